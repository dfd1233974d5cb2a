"""Refunds and disputes, through the real SDK against localstripe."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import stripe
from django_tasks_db.models import DBTaskResult

from tessera.billing import refunds
from tessera.billing.gateways.base import GatewayRejected, GatewayUnavailable, RefundResult
from tessera.billing.gateways.stripe import StripeGateway
from tessera.billing.models import Refund, Transaction
from tessera.ledger.models import LedgerAccount
from tessera.ledger.services import verify
from tessera.loyalty.credit import purchase_credit
from tessera.loyalty.models import PointLot
from tessera.notifications.models import OutboundEmail
from tests.support.api import Api, assert_problem
from tests.support.loyalty import balance, member, program, question
from tests.support.stripe import UseGateway, card, clearing, paid, signed

pytestmark = pytest.mark.django_db


def test_partial_then_full_refund_then_409(admin_api: Api, stripe_env: stripe.StripeClient) -> None:
    txn, m = paid(stripe_env)
    r = admin_api.post(f"/transactions/{txn.pk}/refunds", {"amount": 300, "reason": "changed mind"})
    assert r.status_code == 201, r.content
    first = json.loads(r.content)
    assert first["status"] == "succeeded"
    assert first["amount"] == 300
    assert balance(m) == 700  # the refunded credit's points went back
    rest = json.loads(admin_api.post(f"/transactions/{txn.pk}/refunds", {}).content)
    assert rest["amount"] == 700
    assert rest["status"] == "succeeded"
    body = assert_problem(
        admin_api.post(f"/transactions/{txn.pk}/refunds", {"amount": 1}),
        409,
        "refund_exceeds_remaining",
    )
    assert body["remaining"] == 0
    txn.refresh_from_db()
    assert txn.refunded_amount == 1000
    assert balance(m) == 0
    assert clearing() == 0
    stripe_refunds = [
        r.to_dict() for r in stripe_env.v1.refunds.list(params={"limit": 100}).auto_paging_iter()
    ]
    ours = {r.stripe_refund_id for r in Refund.objects.all()}
    assert {r["id"] for r in stripe_refunds} >= ours
    assert len(ours) == 2
    assert sum(r["amount"] for r in stripe_refunds if r["id"] in ours) == 1000
    view = json.loads(admin_api.get(f"/transactions/{txn.pk}").content)
    assert [x["amount"] for x in view["refunds"]] == [300, 700]
    assert verify().ok


def test_retry_after_a_crash_past_the_refund_finds_it(
    admin_api: Api, stripe_env: stripe.StripeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stripe refunded, then recording its answer failed: the 500 releases the client's
    Idempotency-Key, and the retry must find that refund, not pay out a second one."""
    txn, m = paid(stripe_env)
    headers = {"Idempotency-Key": "refund-after-crash"}

    def crash(*args: object, **kwargs: object) -> bool:
        raise RuntimeError("database went away")

    monkeypatch.setattr(refunds, "record_refund_result", crash)
    first = admin_api.post(f"/transactions/{txn.pk}/refunds", {"amount": 400}, headers=headers)
    assert_problem(first, 500, "internal_error")
    monkeypatch.undo()
    refund = Refund.objects.get()
    assert refund.status == "pending"

    again = admin_api.post(f"/transactions/{txn.pk}/refunds", {"amount": 400}, headers=headers)
    assert again.status_code == 201, again.content
    body = json.loads(again.content)
    assert body["id"] == refund.pk
    assert body["status"] == "succeeded"
    assert Refund.objects.count() == 1
    at_stripe = [
        r.to_dict()
        for r in stripe_env.v1.refunds.list(params={"limit": 100}).auto_paging_iter()
        if (r.to_dict().get("metadata") or {}).get("tessera_refund") == refund.pk
    ]
    assert len(at_stripe) == 1
    assert at_stripe[0]["amount"] == 400
    txn.refresh_from_db()
    assert txn.refunded_amount == 400
    assert balance(m) == 600
    assert clearing() == 600
    assert verify().ok


def test_a_refund_stripe_refuses_is_409_and_gives_everything_back(
    admin_api: Api, stripe_env: stripe.StripeClient, use_gateway: UseGateway
) -> None:
    txn, m = paid(stripe_env)

    class AlreadyRefundedAtStripe(StripeGateway):
        def refund(self, *args: object, **kwargs: object) -> Any:
            raise GatewayRejected("Charge has already been refunded.")

    with use_gateway(AlreadyRefundedAtStripe()):
        body = assert_problem(
            admin_api.post(f"/transactions/{txn.pk}/refunds", {"amount": 400}),
            409,
            "refund_refused",
        )
    refund = Refund.objects.get(pk=body["refund_id"])
    assert refund.status == "failed"
    assert "already been refunded" in refund.failure_reason
    txn.refresh_from_db()
    assert txn.refunded_amount == 0
    assert balance(m) == 1000
    assert clearing() == 1000
    assert verify().ok


def test_partial_refunds_claw_back_what_one_full_refund_would(
    admin_api: Api, stripe_env: stripe.StripeClient
) -> None:
    """1 point per dollar: $1.50 + $1.50 + $7.00 refunded must take back all 10 points,
    not 1 + 1 + 7 (each refund rounded down on its own)."""
    m = member(program(points_per_unit=1, low_balance_threshold=0))
    txn = purchase_credit(
        m.pk, amount=1000, currency="USD", payment_method_id=card(stripe_env)
    ).transaction
    assert balance(m) == 10
    taken = []
    for amount in (150, 150, 700):
        r = admin_api.post(f"/transactions/{txn.pk}/refunds", {"amount": amount})
        assert r.status_code == 201, r.content
        taken.append(10 - balance(m) - sum(taken))
    assert taken == [1, 2, 7]
    assert balance(m) == 0
    assert verify().ok


def test_a_failed_refund_puts_points_back_where_they_came_from(
    stripe_env: stripe.StripeClient, use_gateway: UseGateway
) -> None:
    """The refund took points from an expiring lot; when it fails they go back into that
    lot (expiry and all), not into a new lot that never expires."""
    prog = program(points_per_unit=100, low_balance_threshold=0, points_expire_after_days=30)
    m = member(prog)
    from tessera.loyalty.activities import complete_activity

    complete_activity(m.pk, question(prog, points=100).pk, answer="Paris")
    txn = purchase_credit(
        m.pk, amount=500, currency="USD", payment_method_id=card(stripe_env)
    ).transaction
    lots_before = {lot.pk: (lot.remaining, lot.expires_at) for lot in PointLot.objects.all()}
    assert balance(m) == 600

    class StripeUnreachable(StripeGateway):
        def refund(self, *args: object, **kwargs: object) -> Any:
            raise GatewayUnavailable("timed out")

    with use_gateway(StripeUnreachable()):
        refund = refunds.refund_transaction(txn.pk, amount=500)
    assert refund.status == "pending"
    assert balance(m) == 100
    earned = PointLot.objects.get(expires_at__isnull=False)
    assert earned.remaining == 0  # first in, first out: the earned lot went first
    assert refunds.fail_refund(refund.pk, "card closed")
    assert balance(m) == 600
    assert {
        lot.pk: (lot.remaining, lot.expires_at) for lot in PointLot.objects.all()
    } == lots_before
    assert not refunds.fail_refund(refund.pk, "again")  # once only
    assert balance(m) == 600
    assert verify().ok


def test_refund_over_remainder_writes_nothing(
    admin_api: Api, stripe_env: stripe.StripeClient
) -> None:
    txn, m = paid(stripe_env, 500)
    assert_problem(
        admin_api.post(f"/transactions/{txn.pk}/refunds", {"amount": 501}),
        409,
        "refund_exceeds_remaining",
    )
    txn.refresh_from_db()
    assert txn.refunded_amount == 0
    assert Refund.objects.count() == 0
    assert balance(m) == 500


def test_spent_credit_cannot_be_refunded(admin_api: Api, stripe_env: stripe.StripeClient) -> None:
    from tessera.loyalty.adjustments import adjust_points

    txn, m = paid(stripe_env, 500)
    adjust_points(m.pk, points=-400, reason="spent")
    assert_problem(
        admin_api.post(f"/transactions/{txn.pk}/refunds", {}), 402, "insufficient_balance"
    )
    txn.refresh_from_db()
    assert txn.refunded_amount == 0
    assert Refund.objects.count() == 0
    assert balance(m) == 100
    assert stripe_env.v1.refunds.list(params={"limit": 100}).data == [] or all(
        r["payment_intent"] != txn.stripe_payment_intent_id
        for r in stripe_env.v1.refunds.list(params={"limit": 100}).data
    )


def test_refund_webhook_confirms_a_pending_refund(
    api: Api, stripe_env: stripe.StripeClient
) -> None:
    txn, _ = paid(stripe_env, 800)
    refund = Refund.objects.create(transaction=txn, amount=200, stripe_refund_id="re_pending_1")
    Transaction.objects.filter(pk=txn.pk).update(refunded_amount=200)
    event = {"id": "evt_r1", "object": "event", "type": "charge.refund.updated", "created": int(time.time()),
             "data": {"object": {"id": "re_pending_1", "object": "refund", "status": "succeeded", "amount": 200}}}  # fmt: skip
    payload, sig = signed(event)
    for _ in range(3):
        assert api.client.post("/api/v1/webhooks/stripe", payload, content_type="application/json",
                               headers={"Stripe-Signature": sig}).status_code == 200  # fmt: skip
    refund.refresh_from_db()
    assert refund.status == "succeeded"
    assert clearing() == 600
    assert verify().ok


def refund_failed_event(refund: Refund, n: int) -> tuple[str, str]:
    event = {"id": f"evt_rf{n}", "object": "event", "type": "charge.refund.updated",
             "created": int(time.time()),
             "data": {"object": {"id": refund.stripe_refund_id, "object": "refund",
                                 "status": "failed", "amount": refund.amount,
                                 "failure_reason": "expired_or_canceled_card"}}}  # fmt: skip
    return signed(event)


class StripeSaysRefundFailed(StripeGateway):
    def retrieve_refund(self, refund_id: str) -> Any:
        return RefundResult(refund_id, "failed", 400, failure_reason="expired_or_canceled_card")


def test_a_refund_failing_after_it_succeeded_is_reversed_once(
    admin_api: Api, api: Api, stripe_env: stripe.StripeClient, use_gateway: UseGateway
) -> None:
    """Stripe can fail a refund it reported paid out. The webhook saying so may be stale, so
    it only queues a check; Stripe confirming the failure reverses the refund, once."""
    txn, m = paid(stripe_env, 1000)
    r = admin_api.post(f"/transactions/{txn.pk}/refunds", {"amount": 400})
    refund = Refund.objects.get(pk=json.loads(r.content)["id"])
    assert refund.status == "succeeded"
    assert balance(m) == 600
    assert clearing() == 600
    for n in range(2):  # Stripe may deliver the news twice, under two event ids
        payload, sig = refund_failed_event(refund, n)
        assert api.client.post("/api/v1/webhooks/stripe", payload, content_type="application/json",
                               headers={"Stripe-Signature": sig}).status_code == 200  # fmt: skip
    refund.refresh_from_db()
    assert refund.status == "succeeded"
    assert clearing() == 600
    checks = DBTaskResult.objects.filter(task_path__endswith="check_refund_failure_task")
    assert checks.count() == 2
    assert checks.first().args_kwargs["args"] == [refund.pk]

    with use_gateway(StripeSaysRefundFailed()):
        assert refunds.check_refund_failure(refund.pk)
        assert not refunds.check_refund_failure(refund.pk)  # the second check finds it done
    refund.refresh_from_db()
    txn.refresh_from_db()
    assert refund.status == "failed"
    assert refund.failure_reason == "expired_or_canceled_card"
    assert txn.refunded_amount == 0
    assert clearing() == 1000
    assert balance(m) == 1000
    mails = OutboundEmail.objects.filter(template="refund_failed_admin")
    assert mails.count() == 1
    assert refund.pk in mails.get().text_body
    # What is refundable again is the whole payment.
    again = admin_api.post(f"/transactions/{txn.pk}/refunds", {"amount": 1000})
    assert again.status_code == 201, again.content
    assert verify().ok


def test_a_stale_refund_failure_changes_nothing(
    admin_api: Api, api: Api, stripe_env: stripe.StripeClient
) -> None:
    txn, m = paid(stripe_env, 1000)
    r = admin_api.post(f"/transactions/{txn.pk}/refunds", {"amount": 400})
    refund = Refund.objects.get(pk=json.loads(r.content)["id"])
    payload, sig = refund_failed_event(refund, 0)
    api.client.post("/api/v1/webhooks/stripe", payload, content_type="application/json",
                    headers={"Stripe-Signature": sig})  # fmt: skip
    assert not refunds.check_refund_failure(refund.pk)  # localstripe: still succeeded
    refund.refresh_from_db()
    txn.refresh_from_db()
    assert refund.status == "succeeded"
    assert txn.refunded_amount == 400
    assert balance(m) == 600
    assert clearing() == 600
    assert not OutboundEmail.objects.filter(template="refund_failed_admin").exists()


def test_dispute_flags_and_emails_the_admin(api: Api, stripe_env: stripe.StripeClient) -> None:
    txn, _ = paid(stripe_env, 800)
    event = {"id": "evt_d1", "object": "event", "type": "charge.dispute.created", "created": int(time.time()),
             "data": {"object": {"id": "dp_1", "object": "dispute", "amount": 800, "reason": "fraudulent",
                                 "payment_intent": txn.stripe_payment_intent_id}}}  # fmt: skip
    payload, sig = signed(event)
    for _ in range(2):
        api.client.post(
            "/api/v1/webhooks/stripe",
            payload,
            content_type="application/json",
            headers={"Stripe-Signature": sig},
        )
    txn.refresh_from_db()
    assert txn.disputed
    mails = OutboundEmail.objects.filter(template="dispute_admin")
    assert mails.count() == 1
    assert "fraudulent" in mails.get().text_body


def test_authorise_now_capture_later(stripe_env: stripe.StripeClient) -> None:
    from tessera.billing.services import cancel_transaction, capture_transaction, charge_card
    from tessera.billing.settlement import register_settler

    settled: list[str] = []
    register_settler("test_hold", lambda t: settled.append(t.status))
    m = member(program())
    txn, _ = charge_card(contact=m.contact, amount=1200, currency="USD", payment_method_id=card(stripe_env),
                         purpose="test_hold", purpose_id="x", capture=False)  # fmt: skip
    assert txn.status == "authorized"
    assert settled == ["authorized"]
    assert LedgerAccount.objects.filter(code="stripe:clearing:USD", balance__gt=0).count() == 0
    captured = capture_transaction(txn.pk)
    assert captured.status == "captured"
    assert clearing() == 1200
    assert capture_transaction(txn.pk).status == "captured"  # again: nothing more happens
    assert clearing() == 1200

    other, _ = charge_card(contact=m.contact, amount=500, currency="USD", payment_method_id=card(stripe_env),
                           purpose="test_hold", purpose_id="y", capture=False)  # fmt: skip
    assert cancel_transaction(other.pk).status == "canceled"
    assert clearing() == 1200
    assert verify().ok


@pytest.fixture
def held(stripe_env: stripe.StripeClient) -> Transaction:
    """A $9.00 card payment authorised now, to capture (or cancel) later."""
    from tessera.billing.services import charge_card
    from tessera.billing.settlement import register_settler

    register_settler("test_hold_api", lambda t: None)
    m = member(program())
    txn, _ = charge_card(contact=m.contact, amount=900, currency="USD", payment_method_id=card(stripe_env),
                         purpose="test_hold_api", purpose_id="900", capture=False)  # fmt: skip
    return txn


def test_capturing_a_held_payment_over_the_api(admin_api: Api, held: Transaction) -> None:
    r = admin_api.post(f"/transactions/{held.pk}/capture", {})
    assert r.status_code == 200, r.content
    assert json.loads(r.content)["status"] == "captured"
    assert clearing() == 900
    assert verify().ok


def test_capturing_twice_captures_once(admin_api: Api, held: Transaction) -> None:
    admin_api.post(f"/transactions/{held.pk}/capture", {})
    again = admin_api.post(f"/transactions/{held.pk}/capture", {})
    assert again.status_code == 200
    assert clearing() == 900


def test_a_captured_payment_cannot_be_canceled(admin_api: Api, held: Transaction) -> None:
    admin_api.post(f"/transactions/{held.pk}/capture", {})
    assert_problem(admin_api.post(f"/transactions/{held.pk}/cancel", {}), 409, "conflict")
    assert clearing() == 900


def test_canceling_a_held_payment_over_the_api(
    admin_api: Api, stripe_env: stripe.StripeClient, held: Transaction
) -> None:
    r = admin_api.post(f"/transactions/{held.pk}/cancel", {})
    assert r.status_code == 200
    assert json.loads(r.content)["status"] == "canceled"
    pi = stripe_env.v1.payment_intents.retrieve(held.stripe_payment_intent_id)
    assert pi.status == "canceled"
    assert clearing() == 0
    assert verify().ok


def test_a_canceled_payment_cannot_be_captured(admin_api: Api, held: Transaction) -> None:
    admin_api.post(f"/transactions/{held.pk}/cancel", {})
    assert_problem(admin_api.post(f"/transactions/{held.pk}/capture", {}), 409, "conflict")
    assert clearing() == 0


def test_capturing_an_unknown_transaction_is_not_found(admin_api: Api) -> None:
    assert_problem(
        admin_api.post("/transactions/txn_01J0000000000000000000000/capture", {}), 404, "not_found"
    )
