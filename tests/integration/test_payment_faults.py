"""Payment faults injected at the gateway boundary, then repaired by `tessera reconcile`:
money at Stripe equals money in our ledger, and nothing is charged twice."""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from datetime import timedelta
from typing import Any

import pytest
import stripe
from django.db import transaction
from django.utils import timezone

from tessera.billing import services as billing_services
from tessera.billing.gateways.base import GatewayRejected, GatewayUnavailable, PaymentResult
from tessera.billing.gateways.stripe import StripeGateway
from tessera.billing.models import Transaction
from tessera.billing.services import apply_result
from tessera.ledger.services import verify
from tessera.loyalty.models import WalletTransaction
from tests.support.api import Api, assert_problem
from tests.support.billing import TimeoutAfterCharge, reconcile
from tests.support.loyalty import balance, member, program
from tests.support.stripe import UseGateway, card, clearing, signed, stripe_500_proxy

pytestmark = pytest.mark.django_db


class StripeDown(StripeGateway):
    def create_payment(self, **kw: Any) -> Any:
        raise GatewayUnavailable("500 from Stripe after retries")


class StripeRefusesRequest(StripeGateway):
    """Stripe answers 400 to the create (an amount below its minimum, say)."""

    def create_payment(self, **kw: Any) -> Any:
        raise GatewayRejected("Amount must be at least $0.50 usd")


def stripe_intents_for(client: stripe.StripeClient, txn_id: str) -> list[dict[str, Any]]:
    return [pi.to_dict() for pi in client.v1.payment_intents.list(params={"limit": 100}).auto_paging_iter()
            if (pi.to_dict().get("metadata") or {}).get("tessera_transaction") == txn_id]  # fmt: skip


def topup(api: Api, m: Any, pm: str, amount: int = 1500) -> Any:
    return api.post(
        f"/members/{m.pk}/credit-purchases",
        {"amount": amount, "currency": "USD", "payment_method_id": pm},
    )


def test_timeout_after_stripe_charged_is_settled_by_reconcile(
    api: Api, stripe_env: stripe.StripeClient, good_card: str, use_gateway: UseGateway
) -> None:
    m = member(program())
    with use_gateway(TimeoutAfterCharge()):
        assert_problem(topup(api, m, good_card), 502, "payment_gateway_unavailable")
    txn = Transaction.objects.get()
    assert txn.status == "pending"
    assert txn.stripe_payment_intent_id is None
    assert balance(m) == 0
    output = reconcile()
    assert f"{txn.pk}: pending -> captured" in output
    txn.refresh_from_db()
    intents = stripe_intents_for(stripe_env, txn.pk)
    assert len(intents) == 1
    assert intents[0]["status"] == "succeeded"
    assert txn.status == "captured"
    assert txn.stripe_payment_intent_id == intents[0]["id"]
    assert balance(m) == 1500
    assert clearing() == intents[0]["amount"] == 1500
    assert "0 settled" in reconcile()  # a second run changes nothing
    assert WalletTransaction.objects.filter(type="credit_purchased").count() == 1
    assert verify().ok


def test_crash_between_the_two_transactions(
    api: Api, stripe_env: stripe.StripeClient, good_card: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = member(program())

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("process killed")

    monkeypatch.setattr(billing_services, "_save_card", crash)
    assert_problem(topup(api, m, good_card), 500, "internal_error")
    monkeypatch.undo()
    txn = Transaction.objects.get()
    assert txn.status == "pending"
    assert balance(m) == 0
    reconcile()
    txn.refresh_from_db()
    assert txn.status == "captured"
    assert balance(m) == 1500
    assert len(stripe_intents_for(stripe_env, txn.pk)) == 1
    assert clearing() == 1500
    assert verify().ok


@pytest.mark.parametrize("crash_in", ["_save_card", "apply_result"])
def test_retry_after_a_crash_past_the_charge_resumes_the_payment(
    api: Api,
    stripe_env: stripe.StripeClient,
    good_card: str,
    monkeypatch: pytest.MonkeyPatch,
    crash_in: str,
) -> None:
    """Stripe charged, then our second transaction failed: the 500 releases the client's
    Idempotency-Key, and its retry must find the payment, not charge the card again."""
    m = member(program())
    body = {"amount": 1500, "currency": "USD", "payment_method_id": good_card}
    headers = {"Idempotency-Key": "buy-after-crash"}

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database went away")

    monkeypatch.setattr(billing_services, crash_in, crash)
    first = api.post(f"/members/{m.pk}/credit-purchases", body, headers=headers)
    assert_problem(first, 500, "internal_error")
    monkeypatch.undo()
    txn = Transaction.objects.get()
    assert txn.status == "pending"
    assert balance(m) == 0
    assert len(stripe_intents_for(stripe_env, txn.pk)) == 1  # the card was charged once

    again = api.post(f"/members/{m.pk}/credit-purchases", body, headers=headers)
    assert again.status_code == 201, again.content
    assert json.loads(again.content)["transaction_id"] == txn.pk
    assert Transaction.objects.count() == 1
    intents = stripe_intents_for(stripe_env, txn.pk)
    assert len(intents) == 1
    assert intents[0]["status"] == "succeeded"
    txn.refresh_from_db()
    assert txn.status == "captured"
    assert txn.stripe_payment_intent_id == intents[0]["id"]
    assert balance(m) == 1500
    assert clearing() == 1500
    assert WalletTransaction.objects.filter(type="credit_purchased").count() == 1
    # A third try replays the stored answer and changes nothing.
    third = api.post(f"/members/{m.pk}/credit-purchases", body, headers=headers)
    assert third.status_code == 201
    assert third["Idempotent-Replayed"] == "true"
    assert Transaction.objects.count() == 1
    assert balance(m) == 1500
    assert verify().ok


def test_a_key_reused_for_another_purchase_after_expiry_is_a_new_payment(
    api: Api, good_card: str
) -> None:
    """Idempotency records are pruned after a day; a client reusing the key then for a
    different purchase gets a new payment, not the old one's answer."""
    from tessera.core.models import IdempotencyKey

    m = member(program())
    headers = {"Idempotency-Key": "reused"}
    first = api.post(f"/members/{m.pk}/credit-purchases",
                     {"amount": 500, "currency": "USD", "payment_method_id": good_card}, headers=headers)  # fmt: skip
    assert first.status_code == 201, first.content
    IdempotencyKey.objects.all().delete()  # what prune_idempotency_keys does after a day
    second = api.post(f"/members/{m.pk}/credit-purchases",
                      {"amount": 700, "currency": "USD", "payment_method_id": good_card}, headers=headers)  # fmt: skip
    assert second.status_code == 201, second.content
    assert (
        json.loads(second.content)["transaction_id"] != json.loads(first.content)["transaction_id"]
    )
    assert balance(m) == 1200
    assert Transaction.objects.count() == 2


def test_a_new_key_is_a_new_payment(api: Api, good_card: str) -> None:
    m = member(program())
    body = {"amount": 500, "currency": "USD", "payment_method_id": good_card}
    for key in ("first-purchase", "second-purchase"):
        r = api.post(f"/members/{m.pk}/credit-purchases", body, headers={"Idempotency-Key": key})
        assert r.status_code == 201, r.content
    assert Transaction.objects.filter(status="captured").count() == 2
    assert balance(m) == 1000


def test_a_request_stripe_refuses_is_422_and_credits_nothing(
    api: Api, good_card: str, use_gateway: UseGateway
) -> None:
    m = member(program())
    use_gateway(StripeRefusesRequest())
    body = assert_problem(topup(api, m, good_card, amount=1), 422, "payment_rejected")
    assert "at least" in body["detail"]
    txn = Transaction.objects.get(pk=body["transaction_id"])
    assert txn.status == "failed"
    assert txn.failure_code == "invalid_request"
    assert balance(m) == 0
    assert clearing() == 0
    assert not WalletTransaction.objects.exists()
    assert verify().ok


def test_stripe_down_charges_nothing(
    api: Api, stripe_env: stripe.StripeClient, good_card: str, use_gateway: UseGateway
) -> None:
    m = member(program())
    with use_gateway(StripeDown()):
        assert_problem(topup(api, m, good_card), 502, "payment_gateway_unavailable")
    txn = Transaction.objects.get()
    # Not found yet is not proof: Stripe's search lags; the payment waits for the grace.
    assert f"{txn.pk}: not found at Stripe yet" in reconcile()
    txn.refresh_from_db()
    assert txn.status == "pending"
    Transaction.objects.filter(pk=txn.pk).update(created_at=timezone.now() - timedelta(hours=2))
    assert "pending -> canceled" in reconcile()
    txn.refresh_from_db()
    assert txn.status == "canceled"
    assert stripe_intents_for(stripe_env, txn.pk) == []
    assert txn.failure_code == "not_found_at_stripe"
    assert balance(m) == 0
    assert clearing() == 0
    assert verify().ok


class SearchLags(StripeGateway):
    """Stripe's search has not indexed the payment yet."""

    def find_by_transactions(self, transaction_ids: Collection[str]) -> dict[str, Any]:
        return {}


def test_stripe_capturing_after_we_inferred_a_cancel_wins(
    api: Api, stripe_env: stripe.StripeClient, good_card: str, use_gateway: UseGateway
) -> None:
    """Stripe charged (its answer was lost), its search did not show the payment for over
    the grace period, so reconcile canceled; then Stripe's webhook says succeeded: the
    payment is captured and credited, not ignored as older news."""
    m = member(program())
    with use_gateway(TimeoutAfterCharge()):
        assert_problem(topup(api, m, good_card), 502, "payment_gateway_unavailable")
    txn = Transaction.objects.get()
    Transaction.objects.filter(pk=txn.pk).update(created_at=timezone.now() - timedelta(hours=2))
    with use_gateway(SearchLags()):
        assert "pending -> canceled" in reconcile()
    (intent,) = stripe_intents_for(stripe_env, txn.pk)
    event = {"id": "evt_late_capture", "object": "event", "type": "payment_intent.succeeded",
             "created": int(time.time()), "data": {"object": intent}}  # fmt: skip
    payload, sig = signed(event)
    r = api.client.post("/api/v1/webhooks/stripe", payload, content_type="application/json",
                        headers={"Stripe-Signature": sig})  # fmt: skip
    assert r.status_code == 200, r.content
    txn.refresh_from_db()
    assert txn.status == "captured"
    assert txn.failure_code == ""
    assert balance(m) == 1500
    assert clearing() == 1500
    assert WalletTransaction.objects.filter(type="credit_purchased").count() == 1
    assert verify().ok


def test_a_cancel_stripe_reported_is_final(
    api: Api, stripe_env: stripe.StripeClient, good_card: str, use_gateway: UseGateway
) -> None:
    """Only an inferred cancel yields: one Stripe reported stays canceled (forward only)."""
    m = member(program())
    with use_gateway(TimeoutAfterCharge()):
        assert_problem(topup(api, m, good_card), 502, "payment_gateway_unavailable")
    txn = Transaction.objects.get()
    (intent,) = stripe_intents_for(stripe_env, txn.pk)
    with transaction.atomic():
        locked = Transaction.objects.select_for_update().get(pk=txn.pk)
        apply_result(locked, PaymentResult("canceled", intent["id"]))
    assert not_changed_by(apply_result, txn.pk, PaymentResult("succeeded", intent["id"], 1500))
    txn.refresh_from_db()
    assert txn.status == "canceled"
    assert balance(m) == 0
    assert clearing() == 0


def not_changed_by(fn: Any, txn_id: str, result: PaymentResult) -> bool:
    with transaction.atomic():
        return not fn(Transaction.objects.select_for_update().get(pk=txn_id), result)


def test_3d_secure_waits_for_the_webhook(api: Api, stripe_env: stripe.StripeClient) -> None:
    m = member(program())
    pm = card(stripe_env, "4000002760003184")
    r = topup(api, m, pm, amount=900)
    assert r.status_code == 202, r.content
    body = json.loads(r.content)
    assert body["status"] == "requires_action"
    assert body["client_secret"]
    assert body["wallet_transaction"] is None
    assert balance(m) == 0
    txn = Transaction.objects.get(pk=body["transaction_id"])
    assert txn.status == "pending"
    assert "0 settled" in reconcile()  # Stripe waits for the customer too
    txn.refresh_from_db()
    assert txn.status == "pending"
    # The customer completes 3-D Secure at Stripe (what Stripe.js does with the client
    # secret); Stripe then tells us by webhook, with the PaymentIntent as it now is.
    stripe_env.raw_request(
        "post",
        f"/v1/payment_intents/{txn.stripe_payment_intent_id}/_authenticate",  # localstripe's
        client_secret=body["client_secret"],
        success="true",
    )
    pi = stripe_env.v1.payment_intents.retrieve(txn.stripe_payment_intent_id)
    assert pi.status == "succeeded"
    event = {"id": "evt_3ds", "object": "event", "type": "payment_intent.succeeded",
             "created": int(time.time()), "data": {"object": pi.to_dict()}}  # fmt: skip
    payload, sig = signed(event)
    assert api.client.post("/api/v1/webhooks/stripe", payload, content_type="application/json",
                           headers={"Stripe-Signature": sig}).status_code == 200  # fmt: skip
    txn.refresh_from_db()
    assert txn.status == "captured"
    assert balance(m) == 900
    assert clearing() == 900
    assert verify().ok


def test_retry_after_an_unknown_outcome_never_charges_twice(
    api: Api, stripe_env: stripe.StripeClient, good_card: str, use_gateway: UseGateway
) -> None:
    m = member(program())
    body = {"amount": 1500, "currency": "USD", "payment_method_id": good_card}
    with use_gateway(TimeoutAfterCharge()):
        first = api.post(
            f"/members/{m.pk}/credit-purchases", body, headers={"Idempotency-Key": "buy-1"}
        )
    assert_problem(first, 502, "payment_gateway_unavailable")
    # Stripe answers again; the client retries with the same key
    again = api.post(
        f"/members/{m.pk}/credit-purchases", body, headers={"Idempotency-Key": "buy-1"}
    )
    assert again.status_code == 502
    assert again["Idempotent-Replayed"] == "true"
    assert again.content == first.content  # names the transaction to follow up on
    txn = Transaction.objects.get()
    assert json.loads(again.content)["transaction_id"] == txn.pk
    assert len(stripe_intents_for(stripe_env, txn.pk)) == 1
    reconcile()
    assert balance(m) == 1500
    assert Transaction.objects.count() == 1


def test_500_from_stripe_is_retried_with_one_key_then_reconciled(
    api: Api,
    stripe_env: stripe.StripeClient,
    good_card: str,
    localstripe_url: str,
    use_gateway: UseGateway,
) -> None:
    """A real HTTP 500 on the payment call: the SDK retries it with the same idempotency
    key (so a real Stripe could never charge twice), then we answer 502 and leave the
    transaction pending; reconcile finds nothing at Stripe and, after the grace period for
    Stripe's search, cancels it."""
    m = member(program())

    def payment_calls(method: str, path: str) -> bool:
        return method == "POST" and path.startswith("/v1/payment_intents")

    with (
        stripe_500_proxy(localstripe_url, payment_calls) as proxy,
        use_gateway(StripeGateway(api_base=proxy.url)),
    ):
        r = topup(api, m, good_card)
    body = assert_problem(r, 502, "payment_gateway_unavailable")
    txn = Transaction.objects.get()
    assert body["transaction_id"] == txn.pk
    keys = {key for _, _, key in proxy.failed}
    assert len(proxy.failed) == 3
    assert keys == {f"txn:{txn.pk}:create"}
    assert txn.status == "pending"
    assert stripe_intents_for(stripe_env, txn.pk) == []
    assert "not found at Stripe yet" in reconcile()
    Transaction.objects.filter(pk=txn.pk).update(created_at=timezone.now() - timedelta(hours=2))
    assert "pending -> canceled" in reconcile()
    txn.refresh_from_db()
    assert txn.status == "canceled"
    assert stripe_intents_for(stripe_env, txn.pk) == []
    assert balance(m) == 0
    assert clearing() == 0
    assert verify().ok
