"""Stripe webhooks: verified on the raw body, stored under Stripe's event id and applied in
the same transaction, at most once. Older events never overwrite newer state."""

from __future__ import annotations

from typing import Any

import stripe
from django.conf import settings
from django.db import IntegrityError
from django.db import transaction as db
from django.utils import timezone

from tessera.billing.gateways.base import PaymentResult, RefundResult
from tessera.billing.models import Refund, StripeEvent, Transaction
from tessera.billing.services import apply_result
from tessera.core.errors import ProblemError

STATUS_BY_EVENT = {
    "payment_intent.succeeded": "succeeded",
    "payment_intent.amount_capturable_updated": "requires_capture",
    "payment_intent.payment_failed": "failed",
    "payment_intent.canceled": "canceled",
}


class BadSignature(ProblemError):
    status = 400
    code = "invalid_signature"
    title = "The webhook signature does not verify"


def receive(payload: bytes, signature: str | None) -> bool:
    """Verify and apply one delivery; returns False if the event was already processed."""
    try:
        event = stripe.Webhook.construct_event(payload, signature, settings.STRIPE_WEBHOOK_SECRET)
    except (ValueError, stripe.SignatureVerificationError) as exc:
        raise BadSignature("Signature missing, stale or wrong.") from exc
    data: dict[str, Any] = event.to_dict() if hasattr(event, "to_dict") else dict(event)
    try:
        with db.atomic():
            StripeEvent.objects.create(id=data["id"], type=data["type"], payload=data)
            _apply(data)
            StripeEvent.objects.filter(pk=data["id"]).update(processed_at=timezone.now())
    except IntegrityError:
        if StripeEvent.objects.filter(pk=data["id"]).exists():
            return False  # delivered before: applied then, nothing to do now
        raise
    return True


def _apply(event: dict[str, Any]) -> None:
    obj = event.get("data", {}).get("object", {})
    if event["type"] in ("charge.refunded", "charge.refund.updated"):
        _apply_refunds(obj)
        return
    if event["type"] == "charge.dispute.created":
        _apply_dispute(obj)
        return
    if event["type"] in STATUS_BY_EVENT:
        txn = _transaction_for(obj.get("id"), obj.get("metadata") or {})
        if txn is None:
            return
        error = obj.get("last_payment_error") or {}
        apply_result(
            txn,
            PaymentResult(
                status=STATUS_BY_EVENT[event["type"]],
                payment_intent_id=obj.get("id"),
                amount=int(obj.get("amount") or 0),
                failure_code=str(error.get("decline_code") or error.get("code") or ""),
                failure_message=str(error.get("message") or ""),
            ),
        )


def _transaction_for(pi_id: str | None, metadata: dict[str, Any]) -> Transaction | None:
    qs = Transaction.objects.select_for_update()
    if pi_id:
        found = qs.filter(stripe_payment_intent_id=pi_id).first()
        if found:
            return found
    txn_id = metadata.get("tessera_transaction")
    return qs.filter(pk=txn_id).first() if txn_id else None


def _apply_refunds(obj: dict[str, Any]) -> None:
    """A refund object, or a charge listing its refunds: settle each one we know."""
    from tessera.billing.refunds import record_refund_result

    refunds = [obj] if obj.get("object") == "refund" else (obj.get("refunds") or {}).get("data", [])
    # In Stripe's id order: two deliveries listing the same refunds lock them in one order.
    for data in sorted(refunds, key=lambda d: str(d.get("id") or "")):
        if not data.get("id"):
            continue
        refund = Refund.objects.filter(stripe_refund_id=data["id"]).first()
        if refund is None:
            # We lost Stripe's answer before saving its id; our metadata still names it.
            ours = (data.get("metadata") or {}).get("tessera_refund")
            refund = Refund.objects.filter(pk=ours, stripe_refund_id__isnull=True).first()
        if refund is None:
            continue
        record_refund_result(
            refund.pk,
            RefundResult(
                refund_id=data["id"],
                status=str(data.get("status") or ""),
                amount=int(data.get("amount") or 0),
                failure_reason=str(data.get("failure_reason") or ""),
            ),
            from_stripe_now=False,
        )


def _apply_dispute(obj: dict[str, Any]) -> None:
    from tessera.notifications.services import queue_email

    txn = _transaction_for(obj.get("payment_intent"), obj.get("metadata") or {})
    if txn is None or txn.disputed:
        return
    txn.disputed = True
    txn.save(update_fields=["disputed", "updated_at"])
    queue_email(
        "dispute_admin",
        to=settings.TESSERA_ADMIN_EMAIL,
        context={"transaction_id": txn.pk, "amount": obj.get("amount"), "currency": txn.currency,
                 "reason": obj.get("reason") or "unknown", "dispute_id": obj.get("id")},
    )  # fmt: skip
