"""Refunds left pending (Stripe's answer lost, a crash before we recorded it, a webhook that
never came), injected at the gateway boundary and repaired by `tessera reconcile`: each
refund is paid out and booked once, and a refund Stripe reports failed gives the reserved
amount back."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest
import stripe

from tessera.billing import refunds as billing_refunds
from tessera.billing.gateways.base import GatewayUnavailable, RefundResult
from tessera.billing.gateways.stripe import StripeGateway
from tessera.billing.models import Refund, Transaction
from tessera.billing.reconcile import reconcile as run_reconcile
from tessera.ledger.models import JournalEntry, LedgerAccount
from tessera.ledger.services import verify
from tests.support.api import Api
from tests.support.billing import reconcile
from tests.support.loyalty import balance
from tests.support.stripe import UseGateway, clearing, paid, signed

pytestmark = pytest.mark.django_db


class RefundAnswerLost(StripeGateway):
    """Stripe refunds, then the answer is lost on the way back (a read timeout)."""

    def refund(self, *args: Any, **kwargs: Any) -> RefundResult:
        super().refund(*args, **kwargs)
        raise GatewayUnavailable("read timed out")


class RefundNeverSent(StripeGateway):
    """Stripe cannot be reached at all (a 500 after the SDK's retries): nothing refunded."""

    def refund(self, *args: Any, **kwargs: Any) -> RefundResult:
        raise GatewayUnavailable("500 from Stripe after retries")


class RefundAcceptedAsPending(StripeGateway):
    """Stripe accepts the refund but answers `pending` (as it does while a bank processes
    it); the `charge.refund.updated` webhook that would finish it never arrives."""

    def refund(self, *args: Any, **kwargs: Any) -> RefundResult:
        done = super().refund(*args, **kwargs)
        return RefundResult(done.refund_id, "pending", done.amount)


class RefundLaterFails(StripeGateway):
    """Stripe accepts the refund as `pending` and later reports it failed (e.g. the card
    was closed). localstripe cannot fail a refund, so both answers are injected here and
    no money moves at the emulator."""

    def refund(self, payment_intent_id: str, amount: int, **kwargs: Any) -> RefundResult:
        return RefundResult("re_injected_fails", "pending", amount)

    def retrieve_refund(self, refund_id: str) -> RefundResult:
        assert refund_id == "re_injected_fails"
        return RefundResult(refund_id, "failed", 0, failure_reason="expired_or_canceled_card")


class StripeDownForReads(StripeGateway):
    def retrieve_refund(self, refund_id: str) -> RefundResult:
        raise GatewayUnavailable("connection refused")

    def find_refund(self, payment_intent_id: str, refund_id: str) -> RefundResult | None:
        raise GatewayUnavailable("connection refused")


def refunds_at_stripe(client: stripe.StripeClient, txn: Transaction) -> list[dict[str, Any]]:
    listing = client.v1.refunds.list(
        params={"payment_intent": str(txn.stripe_payment_intent_id), "limit": 100}
    )
    return [r.to_dict() for r in listing.auto_paging_iter()]


def refund_postings(refund: Refund) -> int:
    return JournalEntry.objects.filter(reference=f"refund:{refund.pk}").count()


def snapshot() -> tuple[Any, ...]:
    """Everything a second reconcile could change."""
    return (
        sorted(Refund.objects.values_list("pk", "status", "stripe_refund_id", "updated_at")),
        sorted(Transaction.objects.values_list("pk", "status", "refunded_amount", "updated_at")),
        JournalEntry.objects.count(),
        sorted(LedgerAccount.objects.values_list("code", "balance")),
    )


def reconcile_again_changes_nothing() -> tuple[Any, ...]:
    """Run reconcile once more, check it changed nothing; returns the state it left."""
    before = snapshot()
    reconcile()
    assert snapshot() == before
    return before


def ask_refund(admin_api: Api, txn: Transaction, amount: int) -> dict[str, Any]:
    r = admin_api.post(f"/transactions/{txn.pk}/refunds", {"amount": amount})
    assert r.status_code == 201, r.content
    return dict(json.loads(r.content))


def test_refund_answer_lost_is_settled_once_by_reconcile(
    admin_api: Api, stripe_env: stripe.StripeClient, use_gateway: UseGateway
) -> None:
    txn, m = paid(stripe_env)
    with use_gateway(RefundAnswerLost()):
        body = ask_refund(admin_api, txn, 400)
    assert body["status"] == "pending"
    refund = Refund.objects.get(pk=body["id"])
    assert refund.stripe_refund_id is None
    # Stripe paid out; we have not booked it yet. The points went back at reservation.
    assert len(refunds_at_stripe(stripe_env, txn)) == 1
    assert clearing() == 1000
    assert refund_postings(refund) == 0
    assert balance(m) == 600

    output = reconcile()
    assert f"{refund.pk}: pending -> succeeded" in output
    assert "Refunds checked 1: 1 succeeded, 0 failed" in output
    refund.refresh_from_db()
    at_stripe = refunds_at_stripe(stripe_env, txn)
    # Found by our metadata, not made again (localstripe ignores idempotency keys, so a
    # repeated create would show here as a second refund).
    assert len(at_stripe) == 1
    assert refund.stripe_refund_id == at_stripe[0]["id"]
    assert refund.status == "succeeded"
    assert refund_postings(refund) == 1
    assert clearing() == 1000 - at_stripe[0]["amount"] == 600
    txn.refresh_from_db()
    assert txn.refunded_amount == 400
    assert balance(m) == 600
    assert verify().ok

    before = snapshot()
    again = reconcile()
    assert "Refunds checked 0: 0 succeeded, 0 failed" in again
    assert snapshot() == before
    assert len(refunds_at_stripe(stripe_env, txn)) == 1


def test_crash_after_stripe_refunded_before_we_recorded_it(
    admin_api: Api, stripe_env: stripe.StripeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    txn, m = paid(stripe_env)

    def killed(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("process killed")

    # The process dies inside the second transaction, after Stripe answered: the id is
    # rolled back with it, so only the reservation (first transaction) is left.
    monkeypatch.setattr(billing_refunds, "confirm_refund", killed)
    r = admin_api.post(f"/transactions/{txn.pk}/refunds", {"amount": 1000})
    assert r.status_code == 500
    monkeypatch.undo()
    refund = Refund.objects.get()
    assert refund.status == "pending"
    assert refund.stripe_refund_id is None
    assert len(refunds_at_stripe(stripe_env, txn)) == 1
    assert clearing() == 1000

    assert f"{refund.pk}: pending -> succeeded" in reconcile()
    refund.refresh_from_db()
    assert refund.status == "succeeded"
    assert refund_postings(refund) == 1
    assert len(refunds_at_stripe(stripe_env, txn)) == 1
    assert clearing() == 0
    assert balance(m) == 0
    assert verify().ok
    reconcile_again_changes_nothing()


def test_refund_stripe_never_received_is_made_once(
    admin_api: Api, stripe_env: stripe.StripeClient, use_gateway: UseGateway
) -> None:
    txn, m = paid(stripe_env)
    with use_gateway(RefundNeverSent()):
        body = ask_refund(admin_api, txn, 250)
    assert body["status"] == "pending"
    assert refunds_at_stripe(stripe_env, txn) == []

    assert f"{body['id']}: pending -> succeeded" in reconcile()
    at_stripe = refunds_at_stripe(stripe_env, txn)
    assert len(at_stripe) == 1
    assert at_stripe[0]["amount"] == 250
    assert at_stripe[0]["metadata"] == {"tessera_refund": body["id"]}
    refund = Refund.objects.get(pk=body["id"])
    assert refund.status == "succeeded"
    assert refund.stripe_refund_id == at_stripe[0]["id"]
    assert clearing() == 750
    assert balance(m) == 750
    assert verify().ok
    reconcile_again_changes_nothing()
    assert len(refunds_at_stripe(stripe_env, txn)) == 1


def test_lost_refund_webhook_is_settled_by_retrieving_the_refund(
    api: Api, admin_api: Api, stripe_env: stripe.StripeClient, use_gateway: UseGateway
) -> None:
    txn, _ = paid(stripe_env)
    with use_gateway(RefundAcceptedAsPending()):
        body = ask_refund(admin_api, txn, 300)
    refund = Refund.objects.get(pk=body["id"])
    assert refund.status == "pending"
    assert refund.stripe_refund_id
    assert f"{refund.pk}: pending -> succeeded" in reconcile()
    refund.refresh_from_db()
    assert refund.status == "succeeded"
    assert refund_postings(refund) == 1
    assert clearing() == 700
    assert verify().ok
    before = reconcile_again_changes_nothing()
    # The webhooks arrive after all, late and in any order: nothing moves again.
    for n, status in enumerate(("succeeded", "failed", "succeeded")):
        event = {"id": f"evt_late_{n}", "object": "event", "type": "charge.refund.updated",
                 "created": int(time.time()),
                 "data": {"object": {"id": refund.stripe_refund_id, "object": "refund",
                                     "status": status, "amount": 300}}}  # fmt: skip
        payload, sig = signed(event)
        r = api.client.post("/api/v1/webhooks/stripe", payload, content_type="application/json",
                            headers={"Stripe-Signature": sig})  # fmt: skip
        assert r.status_code == 200
    assert snapshot() == before


def test_refund_stripe_reports_failed_releases_the_reservation(
    admin_api: Api, stripe_env: stripe.StripeClient, use_gateway: UseGateway
) -> None:
    txn, m = paid(stripe_env)
    use_gateway(RefundLaterFails())
    body = ask_refund(admin_api, txn, 1000)
    assert body["status"] == "pending"
    txn.refresh_from_db()
    assert txn.refunded_amount == 1000
    assert balance(m) == 0

    output = reconcile()
    assert f"{body['id']}: pending -> failed" in output
    assert "Refunds checked 1: 0 succeeded, 1 failed" in output
    refund = Refund.objects.get(pk=body["id"])
    assert refund.status == "failed"
    assert refund.failure_reason == "expired_or_canceled_card"
    txn.refresh_from_db()
    assert txn.refunded_amount == 0
    assert balance(m) == 1000
    assert refund_postings(refund) == 0
    assert clearing() == 1000
    assert verify().ok
    reconcile_again_changes_nothing()

    # The released amount can be refunded again, for real this time.
    use_gateway(None)
    retry = ask_refund(admin_api, txn, 1000)
    assert retry["status"] == "succeeded"
    txn.refresh_from_db()
    assert txn.refunded_amount == 1000
    assert balance(m) == 0
    assert clearing() == 0
    assert sum(r["amount"] for r in refunds_at_stripe(stripe_env, txn)) == 1000
    assert verify().ok


def test_young_and_unreachable_refunds_are_left_pending(
    admin_api: Api, stripe_env: stripe.StripeClient, use_gateway: UseGateway
) -> None:
    txn, _ = paid(stripe_env)
    with use_gateway(RefundNeverSent()):
        body = ask_refund(admin_api, txn, 100)
    # Younger than min_age: the original request may still be in flight.
    report = run_reconcile(since=timedelta(hours=1), min_age=timedelta(minutes=5))
    assert report.refunds_checked == 0
    assert refunds_at_stripe(stripe_env, txn) == []

    use_gateway(StripeDownForReads())
    report = run_reconcile(since=timedelta(hours=1), min_age=timedelta(0))
    assert (report.refunds_checked, report.refunds_unreachable) == (1, 1)
    assert any(line.startswith(f"{body['id']}: Stripe unreachable") for line in report.lines)
    refund = Refund.objects.get(pk=body["id"])
    assert refund.status == "pending"
    assert refund_postings(refund) == 0
    assert refunds_at_stripe(stripe_env, txn) == []
    assert clearing() == 1000


def test_refund_webhook_finds_a_refund_whose_id_we_never_saved(
    api: Api, admin_api: Api, stripe_env: stripe.StripeClient, use_gateway: UseGateway
) -> None:
    txn, _ = paid(stripe_env)
    with use_gateway(RefundAnswerLost()):
        body = ask_refund(admin_api, txn, 400)
    (at_stripe,) = refunds_at_stripe(stripe_env, txn)  # as Stripe sends it, with metadata
    event = {"id": "evt_refunded_1", "object": "event", "type": "charge.refunded",
             "created": int(time.time()),
             "data": {"object": {"id": at_stripe["charge"], "object": "charge",
                                 "refunds": {"object": "list", "data": [at_stripe]}}}}  # fmt: skip
    payload, sig = signed(event)
    r = api.client.post("/api/v1/webhooks/stripe", payload, content_type="application/json",
                        headers={"Stripe-Signature": sig})  # fmt: skip
    assert r.status_code == 200, r.content
    refund = Refund.objects.get(pk=body["id"])
    assert refund.status == "succeeded"
    assert refund.stripe_refund_id == at_stripe["id"]
    assert refund_postings(refund) == 1
    assert clearing() == 600
    assert verify().ok
    before = snapshot()
    assert "Refunds checked 0:" in reconcile()
    assert snapshot() == before
