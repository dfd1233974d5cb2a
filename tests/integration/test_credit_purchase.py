"""Wallet top-ups by card, through the real Stripe SDK against localstripe."""

from __future__ import annotations

import json
from typing import Any

import pytest
import stripe
from django.db import connection

from tessera.billing.models import PaymentMethod, StripeEvent, Transaction
from tessera.ledger.services import verify
from tessera.loyalty.models import Member, WalletTransaction
from tests.support.api import Api, assert_problem
from tests.support.loyalty import balance, member, program
from tests.support.stripe import card, pi_event, signed

pytestmark = pytest.mark.django_db


def buy_credit(api: Api, m: Member, pm: str) -> Any:
    """$25.00 of points (100 points per unit) by card, under one Idempotency-Key."""
    return api.post(f"/members/{m.pk}/credit-purchases", {"amount": 2500, "currency": "USD", "payment_method_id": pm},
                    headers={"Idempotency-Key": "topup-1"})  # fmt: skip


@pytest.fixture
def buyer(db: None) -> Member:
    return member(program(points_per_unit=100))


def test_a_credit_purchase_credits_the_points(api: Api, good_card: str, buyer: Member) -> None:
    r = buy_credit(api, buyer, good_card)
    assert r.status_code == 201, r.content
    body = json.loads(r.content)
    assert body["status"] == "succeeded"
    assert body["points"] == 2500
    assert body["wallet_transaction"]["type"] == "credit_purchased"
    assert body["wallet_transaction"]["label"] == "Credit Purchased"
    assert balance(buyer) == 2500


def test_a_credit_purchase_is_captured_at_stripe(api: Api, good_card: str, buyer: Member) -> None:
    body = json.loads(buy_credit(api, buyer, good_card).content)
    txn = Transaction.objects.get(pk=body["transaction_id"])
    assert txn.status == "captured"
    assert txn.stripe_payment_intent_id.startswith("pi_")


def test_a_credit_purchase_remembers_the_card_it_was_paid_with(
    api: Api, good_card: str, buyer: Member
) -> None:
    body = json.loads(buy_credit(api, buyer, good_card).content)
    method = PaymentMethod.objects.get(stripe_id=good_card)
    assert (method.brand, method.last4, method.exp_month, method.exp_year) == (
        "visa",
        "4242",
        12,
        2031,
    )
    assert Transaction.objects.get(pk=body["transaction_id"]).payment_method == method


def test_a_credit_purchase_keeps_the_ledger_balanced(
    api: Api, good_card: str, buyer: Member
) -> None:
    buy_credit(api, buyer, good_card)
    assert verify().ok


def test_a_replayed_credit_purchase_credits_points_once(
    api: Api, good_card: str, buyer: Member
) -> None:
    buy_credit(api, buyer, good_card)
    again = buy_credit(api, buyer, good_card)
    assert again.status_code == 201
    assert again["Idempotent-Replayed"] == "true"
    # Nothing is charged or credited twice.
    assert Transaction.objects.count() == 1
    assert balance(buyer) == 2500
    assert verify().ok


def test_declined_card_credits_nothing(api: Api, stripe_env: stripe.StripeClient) -> None:
    m = member(program())
    pm = card(stripe_env, "4000000000000002")
    body = assert_problem(
        api.post(f"/members/{m.pk}/credit-purchases", {"amount": 1000, "currency": "USD", "payment_method_id": pm}),
        402, "payment_declined",
    )  # fmt: skip
    # localstripe answers this card with Stripe's error code only (no decline_code).
    assert body["decline_code"] == "card_declined"
    assert balance(m) == 0
    assert WalletTransaction.objects.filter(type="credit_purchased").count() == 0
    txn = Transaction.objects.get()
    assert txn.status == "failed"
    assert txn.failure_code == "card_declined"
    assert body["transaction_id"] == txn.pk


def test_a_currency_other_than_the_programs_is_refused(
    api: Api, stripe_env: stripe.StripeClient
) -> None:
    m = member(program())
    assert_problem(api.post(f"/members/{m.pk}/credit-purchases", {"amount": 1000, "currency": "EUR", "payment_method_id": "pm_x"}),
                   422, "validation_error")  # fmt: skip
    assert balance(m) == 0


def test_an_unknown_payment_method_is_a_wrong_request_not_a_decline(
    api: Api, stripe_env: stripe.StripeClient
) -> None:
    m = member(program())
    # Nothing was declined: the id names no card, so the request is wrong (422, the field).
    body = assert_problem(api.post(f"/members/{m.pk}/credit-purchases", {"amount": 1000, "currency": "USD", "payment_method_id": "pm_nope"}),
                          422, "validation_error")  # fmt: skip
    assert body["errors"] == [
        {"field": "payment_method_id", "message": "is not a payment method that can be charged"}
    ]
    assert balance(m) == 0


def test_webhook_delivered_five_times_applies_once(
    api: Api, stripe_env: stripe.StripeClient
) -> None:
    m = member(program())
    txn = Transaction.objects.create(contact=m.contact, amount=500, currency="USD", purpose="wallet_topup",
                                     purpose_id=m.pk, stripe_payment_intent_id="pi_webhook_1")  # fmt: skip
    payload, sig = signed(
        pi_event("evt_1", "payment_intent.succeeded", "pi_webhook_1", 500, txn.pk)
    )
    statuses = []
    for _ in range(5):
        r = api.client.post("/api/v1/webhooks/stripe", payload, content_type="application/json",
                            headers={"Stripe-Signature": sig})  # fmt: skip
        statuses.append((r.status_code, json.loads(r.content)["duplicate"]))
    assert statuses == [(200, False)] + [(200, True)] * 4
    txn.refresh_from_db()
    assert txn.status == "captured"
    assert balance(m) == 500
    assert WalletTransaction.objects.filter(type="credit_purchased").count() == 1
    assert StripeEvent.objects.count() == 1
    assert verify().ok


def test_out_of_order_events_never_move_backwards(
    api: Api, stripe_env: stripe.StripeClient
) -> None:
    m = member(program())
    txn = Transaction.objects.create(contact=m.contact, amount=500, currency="USD", purpose="wallet_topup",
                                     purpose_id=m.pk, stripe_payment_intent_id="pi_webhook_2")  # fmt: skip
    for event in (
        pi_event("evt_ok", "payment_intent.succeeded", "pi_webhook_2", 500, txn.pk),
        pi_event("evt_late_fail", "payment_intent.payment_failed", "pi_webhook_2", 500, txn.pk),
    ):
        payload, sig = signed(event)
        assert api.client.post("/api/v1/webhooks/stripe", payload, content_type="application/json",
                               headers={"Stripe-Signature": sig}).status_code == 200  # fmt: skip
    txn.refresh_from_db()
    assert txn.status == "captured"
    assert balance(m) == 500


@pytest.mark.parametrize("order", [("failed", "succeeded"), ("succeeded", "failed")])
def test_failed_and_succeeded_in_either_order_end_captured_once(
    api: Api, stripe_env: stripe.StripeClient, order: tuple[str, str]
) -> None:
    """A first attempt fails (e.g. 3-D Secure abandoned) and a retry on the same
    PaymentIntent succeeds: Stripe took the money, so we must end captured whichever event
    arrives first, and each delivered twice still credits once."""
    m = member(program())
    txn = Transaction.objects.create(contact=m.contact, amount=500, currency="USD", purpose="wallet_topup",
                                     purpose_id=m.pk, stripe_payment_intent_id="pi_webhook_order")  # fmt: skip
    events = {
        "failed": pi_event("evt_o_fail", "payment_intent.payment_failed", "pi_webhook_order", 500,
                           txn.pk, last_payment_error={"code": "card_declined",
                                                       "decline_code": "authentication_required"}),
        "succeeded": pi_event("evt_o_ok", "payment_intent.succeeded", "pi_webhook_order", 500,
                              txn.pk),
    }  # fmt: skip
    seen = []
    for kind in (*order, *order):
        payload, sig = signed(events[kind])
        r = api.client.post("/api/v1/webhooks/stripe", payload, content_type="application/json",
                            headers={"Stripe-Signature": sig})  # fmt: skip
        assert r.status_code == 200
        txn.refresh_from_db()
        seen.append(txn.status)
    first = "failed" if order[0] == "failed" else "captured"
    assert seen == [first, "captured", "captured", "captured"]
    assert balance(m) == 500
    assert WalletTransaction.objects.filter(type="credit_purchased").count() == 1
    assert StripeEvent.objects.count() == 2
    assert verify().ok


def test_tampered_body_is_400_and_writes_nothing(api: Api, stripe_env: stripe.StripeClient) -> None:
    """The signature is checked on the raw bytes: a body changed after signing (here, the
    amount) or merely re-serialised is refused, and nothing is stored or applied."""
    from tessera.ledger.models import JournalEntry

    m = member(program())
    txn = Transaction.objects.create(contact=m.contact, amount=500, currency="USD", purpose="wallet_topup",
                                     purpose_id=m.pk, stripe_payment_intent_id="pi_webhook_4")  # fmt: skip
    payload, sig = signed(
        pi_event("evt_t", "payment_intent.succeeded", "pi_webhook_4", 500, txn.pk)
    )
    entries = JournalEntry.objects.count()
    for body in (
        payload.replace(b'"amount": 500', b'"amount": 50000'),
        json.dumps(json.loads(payload), separators=(",", ":")).encode(),
    ):
        assert body != payload
        r = api.client.post("/api/v1/webhooks/stripe", body, content_type="application/json",
                            headers={"Stripe-Signature": sig})  # fmt: skip
        assert_problem(r, 400, "invalid_signature")
    txn.refresh_from_db()
    assert txn.status == "pending"
    assert StripeEvent.objects.count() == 0
    assert balance(m) == 0
    assert JournalEntry.objects.count() == entries
    assert WalletTransaction.objects.filter(type="credit_purchased").count() == 0
    # The untouched body with the same signature is accepted: the refusals above were
    # about the bytes, not a broken secret.
    ok = api.client.post("/api/v1/webhooks/stripe", payload, content_type="application/json",
                         headers={"Stripe-Signature": sig})  # fmt: skip
    assert ok.status_code == 200
    assert StripeEvent.objects.count() == 1


def test_bad_signature_is_400_and_writes_nothing(api: Api, stripe_env: stripe.StripeClient) -> None:
    m = member(program())
    txn = Transaction.objects.create(contact=m.contact, amount=500, currency="USD", purpose="wallet_topup",
                                     purpose_id=m.pk, stripe_payment_intent_id="pi_webhook_3")  # fmt: skip
    payload, _ = signed(pi_event("evt_x", "payment_intent.succeeded", "pi_webhook_3", 500, txn.pk))
    _, forged = signed(
        pi_event("evt_x", "payment_intent.succeeded", "pi_webhook_3", 500, txn.pk),
        secret="whsec_wrong",
    )
    for header in ({"Stripe-Signature": forged}, {}, {"Stripe-Signature": "t=1,v1=00"}):
        r = api.client.post(
            "/api/v1/webhooks/stripe", payload, content_type="application/json", headers=header
        )
        assert_problem(r, 400, "invalid_signature")
    txn.refresh_from_db()
    assert txn.status == "pending"
    assert StripeEvent.objects.count() == 0
    assert balance(m) == 0


def test_no_card_number_is_stored(api: Api, good_card: str) -> None:
    m = member(program())
    api.post(
        f"/members/{m.pk}/credit-purchases",
        {"amount": 700, "currency": "USD", "payment_method_id": good_card},
    )
    with connection.cursor() as cur:
        tables = connection.introspection.table_names(cur)
        for table in tables:
            cur.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - our own table names
            dump = repr(cur.fetchall())
            assert "4242424242424242" not in dump, table
            assert "'123'" not in dump, table


def test_no_card_number_in_logs(
    api: Api, stripe_env: stripe.StripeClient, caplog: pytest.LogCaptureFixture
) -> None:
    m = member(program())
    pm = card(stripe_env)  # the browser's part (Stripe.js), before we start listening
    with caplog.at_level("DEBUG"):
        r = api.post(
            f"/members/{m.pk}/credit-purchases",
            {"amount": 700, "currency": "USD", "payment_method_id": pm},
        )
    assert r.status_code == 201
    assert caplog.records  # we did capture the request's logging
    assert "4242424242424242" not in caplog.text
    assert "cvc" not in caplog.text.lower()
