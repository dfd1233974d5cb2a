"""Refunds, as a saga like payments (rule 4): reserve under a lock and commit, ask Stripe
with a key derived from the refund's id, then confirm or compensate."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction as db
from django.db.models import F

from tessera.billing.gateways.base import (
    Gateway,
    GatewayRejected,
    GatewayUnavailable,
    RefundResult,
)
from tessera.billing.gateways.stripe import get_gateway
from tessera.billing.lock_objects import lock_refund, lock_transaction
from tessera.billing.models import Refund, Transaction
from tessera.billing.services import book_cash, get_transaction
from tessera.billing.settlement import settle_refund
from tessera.core.errors import Conflict, ValidationFailed
from tessera.core.money import Money
from tessera.crm.services import record_timeline


class RefundRefused(Conflict):
    code = "refund_refused"
    title = "The payment provider refused the refund"


class RefundExceedsRemaining(Conflict):
    code = "refund_exceeds_remaining"
    title = "The refund is larger than what is left to refund"


def refund_transaction(
    txn_id: str, *, amount: int | None = None, reason: str = "", request_key: str | None = None
) -> Refund:
    """Refund ``amount`` (default: all that remains). 409 ``refund_exceeds_remaining`` if
    it is more than the captured amount less earlier refunds, checked under a row lock.

    ``request_key`` names the client's request (its Idempotency-Key): a retry of a request
    that crashed after Stripe refunded finds that refund instead of refunding again."""
    get_transaction(txn_id)
    if request_key and (earlier := Refund.objects.filter(request_key=request_key).first()):
        return _resume(earlier)
    with db.atomic():
        txn = lock_transaction(txn_id)
        # The same request running at the same time (its key taken over) waited for this
        # lock: its refund is the one.
        earlier = Refund.objects.filter(request_key=request_key).first() if request_key else None
        if earlier is None:
            refund = _reserve(txn, amount, reason, request_key)
    if earlier is not None:
        return _resume(earlier)
    try:
        result = get_gateway().refund(
            _intent_of(txn),
            refund.amount,
            idempotency_key=refund_idempotency_key(refund.pk),
            metadata={"tessera_refund": refund.pk},
        )
    except GatewayUnavailable:
        return refund  # stays pending; the webhook or the reconciler finishes it
    except GatewayRejected as exc:  # e.g. already refunded from Stripe's dashboard
        fail_refund(refund.pk, str(exc)[:255])
        raise RefundRefused(f"Stripe refused the refund: {exc}", refund_id=refund.pk) from exc
    except Exception as exc:
        fail_refund(refund.pk, str(exc)[:255])
        raise
    record_refund_result(refund.pk, result)
    refund.refresh_from_db()
    return refund


def _reserve(txn: Transaction, amount: int | None, reason: str, request_key: str | None) -> Refund:
    """Take ``amount`` off what is left to refund (the transaction is locked), and let the
    owner reverse what the money bought."""
    if txn.status != Transaction.Status.CAPTURED or not txn.stripe_payment_intent_id:
        raise Conflict(f"Transaction {txn.pk} is {txn.status}; only captured payments refund.")
    remaining = txn.amount - txn.refunded_amount

    def money(minor: int) -> str:
        return Money(minor, txn.currency).format(settings.TESSERA_LOCALE)

    if remaining <= 0:  # "refund the rest" of a payment with no rest is too much, not 422
        raise RefundExceedsRemaining(
            f"Nothing is left to refund: all {money(txn.amount)} was refunded.", remaining=0
        )
    amount = remaining if amount is None else amount
    if amount <= 0:
        raise ValidationFailed.field("amount", "must be positive")
    if amount > remaining:
        raise RefundExceedsRemaining(
            f"{money(amount)} asked; {money(remaining)} of {money(txn.amount)} is left to refund.",
            remaining=remaining,
        )
    Transaction.objects.filter(pk=txn.pk).update(refunded_amount=F("refunded_amount") + amount)
    refund = Refund.objects.create(
        transaction=txn, amount=amount, reason=reason[:255], request_key=request_key
    )
    # The owner reverses what the money bought (points, registrations) now, inside the
    # reservation, so a refund is never paid out for something still held.
    settle_refund(txn, refund)
    return refund


def _resume(refund: Refund) -> Refund:
    """The same refund request again: what the first attempt achieved, finished if Stripe
    has not answered for it yet."""
    if refund.status != Refund.Status.PENDING:
        return refund
    try:
        result = ask_stripe_about(get_gateway(), refund)
    except GatewayUnavailable:
        return refund  # still pending; the webhook or the reconciler finishes it
    except RefundCreateRefused as exc:
        fail_refund(refund.pk, str(exc)[:255])
    else:
        record_refund_result(refund.pk, result)
    refund.refresh_from_db()
    return refund


class RefundCreateRefused(Exception):
    """Stripe has no refund of ours for this row and refuses to make one."""


def ask_stripe_about(gateway: Gateway, refund: Refund) -> RefundResult:
    """What Stripe did with one of our refunds: by its id, else by our metadata on the
    payment's refunds, else (Stripe never got the request) the create made again."""
    if refund.stripe_refund_id:
        return gateway.retrieve_refund(refund.stripe_refund_id)
    pi_id = _intent_of(refund.transaction)
    found = gateway.find_refund(pi_id, refund.pk)
    if found is not None:
        return found
    # The refund was promised (the API answered) and what it paid for was already taken
    # back, so finish it: the same request under the same key, so that a racing original
    # can still refund only once.
    try:
        return gateway.refund(
            pi_id,
            refund.amount,
            idempotency_key=refund_idempotency_key(refund.pk),
            metadata={"tessera_refund": refund.pk},
        )
    except GatewayRejected as exc:
        raise RefundCreateRefused(str(exc)) from exc


def _intent_of(txn: Transaction) -> str:
    """The Stripe payment a refund goes back through. A refund is only ever reserved on a
    captured payment with its Stripe id saved (``_reserve``), so a blank one is a bug."""
    if not txn.stripe_payment_intent_id:
        raise RuntimeError(f"transaction {txn.pk} has a refund but no Stripe payment")
    return txn.stripe_payment_intent_id


def refund_idempotency_key(refund_id: str) -> str:
    """One key per refund of ours: the API call and the reconciler's repeat of it must be
    the same request to Stripe."""
    return f"refund:{refund_id}"


def record_refund_result(
    refund_id: str, result: RefundResult, *, from_stripe_now: bool = True
) -> bool:
    """Record what Stripe says about one of our refunds: its id, and, once it is final,
    confirm or fail it. Returns whether the refund left ``pending`` just now. Stripe's
    ``pending`` and ``requires_action`` leave it pending for the webhook or reconciler.

    A refund Stripe reported ``succeeded`` can still fail later (the card was closed).
    ``from_stripe_now`` says whether ``result`` is Stripe's answer to a call just made; a
    webhook's copy may be stale or out of order, so then the failure is checked with
    Stripe by a job (not here: this runs inside the webhook's database transaction)."""
    with db.atomic():
        # Only fill a missing id: a retry or a late answer never rewrites it.
        Refund.objects.filter(pk=refund_id, stripe_refund_id__isnull=True).update(
            stripe_refund_id=result.refund_id
        )
        if result.status == "succeeded":
            return confirm_refund(refund_id)
        if result.status in ("failed", "canceled"):
            why = result.failure_reason or f"{result.status} at Stripe"
            if fail_refund(refund_id, why):
                return True
            if from_stripe_now:
                return reverse_refund(refund_id, why)
            if Refund.objects.filter(pk=refund_id, status=Refund.Status.SUCCEEDED).exists():
                from tessera.billing.tasks import check_refund_failure_task

                check_refund_failure_task.enqueue(refund_id)
    return False


def check_refund_failure(refund_id: str) -> bool:
    """A webhook said a paid-out refund failed: ask Stripe, and reverse it if so. Returns
    whether it was reversed."""
    refund = Refund.objects.get(pk=refund_id)
    if refund.status != Refund.Status.SUCCEEDED or not refund.stripe_refund_id:
        return False
    result = get_gateway().retrieve_refund(refund.stripe_refund_id)
    if result.status not in ("failed", "canceled"):
        return False  # the webhook's news was stale
    return reverse_refund(refund_id, result.failure_reason or f"{result.status} at Stripe")


def confirm_refund(refund_id: str) -> bool:
    """Mark a refund paid out and book it, once (a webhook or the reconciler may get here
    too); returns False if it was no longer pending."""
    with db.atomic():
        refund = _move(refund_id, Refund.Status.PENDING, Refund.Status.SUCCEEDED)
        if refund is None:
            return False
        book_cash(refund.transaction, -refund.amount, kind="payment_refunded",
                  reference=f"refund:{refund.pk}", object_type="refund",
                  object_id=refund.pk)  # fmt: skip
        txn = refund.transaction
        money = Money(refund.amount, txn.currency).format(settings.TESSERA_LOCALE)
        record_timeline(txn.contact, kind="refund", obj=refund, summary=f"Refund {money}")
    return True


def fail_refund(refund_id: str, why: str) -> bool:
    """Stripe refused: give the reservation back (and what the owner reversed), once;
    returns False if it was no longer pending."""
    with db.atomic():
        refund = _move(refund_id, Refund.Status.PENDING, Refund.Status.FAILED, why)
        if refund is None:
            return False
        _give_back(refund)
    return True


def _move(refund_id: str, expected: str, new: str, why: str = "") -> Refund | None:
    """Lock the refund and move it from ``expected`` to ``new``; None if it was not in
    ``expected`` (someone else got here first)."""
    refund = lock_refund(refund_id)
    if refund.status != expected:
        return None
    refund.status = new
    fields = ["status", "updated_at"]
    if why:
        refund.failure_reason = why[:255]
        fields.append("failure_reason")
    refund.save(update_fields=fields)
    return refund


def _give_back(refund: Refund) -> None:
    """The refund's amount is refundable again, and the owner restores what it reversed."""
    Transaction.objects.filter(pk=refund.transaction_id).update(
        refunded_amount=F("refunded_amount") - refund.amount
    )
    settle_refund(refund.transaction, refund)


def reverse_refund(refund_id: str, why: str) -> bool:
    """Stripe failed a refund it had reported paid out (the customer's card was closed,
    say): the money is back in our Stripe balance. Undo it in a new entry (entries are never
    edited), give the amount back to what is refundable, let the owner restore what the
    refund took (points), and tell the admin, who must pay the customer another way.
    Once; returns False unless the refund was ``succeeded``."""
    from tessera.notifications.services import queue_email

    with db.atomic():
        refund = _move(refund_id, Refund.Status.SUCCEEDED, Refund.Status.FAILED, why)
        if refund is None:
            return False
        book_cash(refund.transaction, refund.amount, kind="refund_reversed",
                  reference=f"refund_reversed:{refund.pk}", object_type="refund",
                  object_id=refund.pk, memo=why)  # fmt: skip
        _give_back(refund)
        txn = refund.transaction
        money = Money(refund.amount, txn.currency).format(settings.TESSERA_LOCALE)
        record_timeline(
            txn.contact, kind="refund", obj=refund, summary=f"Refund {money} failed: {why}"
        )
        queue_email(
            "refund_failed_admin",
            to=settings.TESSERA_ADMIN_EMAIL,
            context={"refund_id": refund.pk, "transaction_id": txn.pk, "amount": money,
                     "reason": why, "contact": str(txn.contact)},
        )  # fmt: skip
    return True
