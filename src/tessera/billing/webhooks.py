"""Stripe webhooks: verified on the raw body, stored under Stripe's event id and applied in
the same transaction, at most once. Older events never overwrite newer state."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import stripe
from django.conf import settings
from django.db import IntegrityError
from django.db import transaction as db
from django.utils import timezone

from tessera.billing.gateways.base import PaymentResult, RefundResult
from tessera.billing.lock_objects import lock_transaction_for_intent
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


class BadEvent(ProblemError):
    status = 400
    code = "invalid_event"
    title = "The webhook body is not a Stripe event"


# What an event must have for us to store and route it (Stripe's own limits on ids).
EVENT_ID_MAX, EVENT_TYPE_MAX = 255, 100


@dataclass(frozen=True, slots=True)
class VerifiedEvent:
    """A Stripe event whose signature and shape were checked: ``payload`` is the whole
    event as Stripe sent it (made storable), with ``data.object`` a dict."""

    id: str
    type: str
    payload: dict[str, Any]

    @property
    def data_object(self) -> dict[str, Any]:
        """What the event is about: ``data.object``."""
        obj: dict[str, Any] = self.payload["data"]["object"]
        return obj


def parse_event(payload: bytes, signature: str | None) -> VerifiedEvent:
    """The verified event; 400 for a bad signature or a body of another shape.

    The signature is checked on the raw bytes before anything is parsed. A signed body
    is still checked for shape: the secret may leak, and a malformed event must get an
    answer rather than fail somewhere in the handlers."""
    try:
        stripe.WebhookSignature.verify_header(
            payload.decode("utf-8", "replace"),
            signature or "",
            settings.STRIPE_WEBHOOK_SECRET,
            stripe.Webhook.DEFAULT_TOLERANCE,
        )
    except stripe.SignatureVerificationError as exc:
        raise BadSignature("Signature missing, stale or wrong.") from exc
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadEvent("The body is not JSON (or nests too deeply).") from exc
    if not isinstance(data, dict):
        raise BadEvent("The body must be a JSON object.")
    event_id, kind, inner = data.get("id"), data.get("type"), data.get("data")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= EVENT_ID_MAX:
        raise BadEvent(f"id must be a string of 1 to {EVENT_ID_MAX} characters.")
    if not isinstance(kind, str) or not 0 < len(kind) <= EVENT_TYPE_MAX:
        raise BadEvent(f"type must be a string of 1 to {EVENT_TYPE_MAX} characters.")
    if not isinstance(inner, dict) or not isinstance(inner.get("object"), dict):
        raise BadEvent("data.object must be an object.")
    created = data.get("created", 0)
    if not isinstance(created, int) or isinstance(created, bool):
        raise BadEvent("created must be a Unix timestamp (an integer).")
    try:
        stored = dict(storable(data))
    except RecursionError as exc:
        raise BadEvent("The event nests too deeply.") from exc
    # The id and type as stored (a NUL dropped), so the row and its lookups agree.
    return VerifiedEvent(id=stored["id"], type=stored["type"], payload=stored)


def storable(value: Any) -> Any:
    """The event with every string storable in the database: JSON allows NUL and lone
    surrogate escapes, which PostgreSQL cannot hold. Stripe sends neither; a body that
    does is still answered, not a 500."""
    if isinstance(value, str):
        return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [storable(v) for v in value]
    return value


def receive(payload: bytes, signature: str | None) -> bool:
    """Verify and apply one delivery; returns False if the event was already processed."""
    event = parse_event(payload, signature)
    try:
        with db.atomic():
            StripeEvent.objects.create(id=event.id, type=event.type, payload=event.payload)
            _apply(event)
            StripeEvent.objects.filter(pk=event.id).update(processed_at=timezone.now())
    except IntegrityError:
        if StripeEvent.objects.filter(pk=event.id).exists():
            return False  # delivered before: applied then, nothing to do now
        raise
    return True


def _text(obj: dict[str, Any], key: str) -> str:
    """A field Stripe sends as a string; anything else reads as absent."""
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def _number(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _object(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    return value if isinstance(value, dict) else {}


def _apply(event: VerifiedEvent) -> None:
    obj = event.data_object
    if event.type in ("charge.refunded", "charge.refund.updated"):
        _apply_refunds(obj)
        return
    if event.type == "charge.dispute.created":
        _apply_dispute(obj)
        return
    if event.type in STATUS_BY_EVENT:
        txn = _transaction_for(_text(obj, "id"), _object(obj, "metadata"))
        if txn is None:
            return
        error = _object(obj, "last_payment_error")
        apply_result(
            txn,
            PaymentResult(
                status=STATUS_BY_EVENT[event.type],
                payment_intent_id=_text(obj, "id"),
                amount=_number(obj, "amount"),
                failure_code=_text(error, "decline_code") or _text(error, "code"),
                failure_message=_text(error, "message"),
            ),
        )


def _transaction_for(pi_id: str, metadata: dict[str, Any]) -> Transaction | None:
    return lock_transaction_for_intent(pi_id, _text(metadata, "tessera_transaction"))


def _apply_refunds(obj: dict[str, Any]) -> None:
    """A refund object, or a charge listing its refunds: settle each one we know."""
    from tessera.billing.refunds import record_refund_result

    listed = _object(obj, "refunds").get("data")
    refunds = [obj] if obj.get("object") == "refund" else listed if isinstance(listed, list) else []
    # In Stripe's id order: two deliveries listing the same refunds lock them in one order.
    for data in sorted((r for r in refunds if isinstance(r, dict)), key=lambda d: _text(d, "id")):
        stripe_id = _text(data, "id")
        refund = _our_refund(stripe_id, data) if stripe_id else None
        if refund is None:
            continue
        record_refund_result(
            refund.pk,
            RefundResult(
                refund_id=stripe_id,
                status=_text(data, "status"),
                amount=_number(data, "amount"),
                failure_reason=_text(data, "failure_reason"),
            ),
            from_stripe_now=False,
        )


def _our_refund(stripe_id: str, data: dict[str, Any]) -> Refund | None:
    """Our refund that Stripe's refund object ``data`` is about, if any."""
    refund = Refund.objects.filter(stripe_refund_id=stripe_id).first()
    if refund is not None:
        return refund
    # We lost Stripe's answer before saving its id; our metadata still names it.
    ours = _text(_object(data, "metadata"), "tessera_refund")
    return Refund.objects.filter(pk=ours, stripe_refund_id__isnull=True).first() if ours else None


def _apply_dispute(obj: dict[str, Any]) -> None:
    from tessera.notifications.services import queue_email

    txn = _transaction_for(_text(obj, "payment_intent"), _object(obj, "metadata"))
    if txn is None or txn.disputed:
        return
    txn.disputed = True
    txn.save(update_fields=["disputed", "updated_at"])
    queue_email(
        "dispute_admin",
        to=settings.TESSERA_ADMIN_EMAIL,
        context={"transaction_id": txn.pk, "amount": _number(obj, "amount"),
                 "currency": txn.currency, "reason": _text(obj, "reason") or "unknown",
                 "dispute_id": _text(obj, "id")},
    )  # fmt: skip
