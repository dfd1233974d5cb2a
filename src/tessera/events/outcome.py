"""How a checkout ends: completed (registered, invoiced, confirmed) or failed (everything it
held given back, its attendees and invoice kept as cancelled and void for the record).

Both run on a locked checkout inside the caller's transaction and return at once if the
checkout already ended (the API answer, the webhook and the reconciler may all arrive).
Billing settles ``checkout`` payments here (``settle_checkout``); the worker expires holds
whose buyer never finished 3-D Secure (``expire_holds``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from tessera.billing.gateways.base import GatewayRejected, GatewayUnavailable
from tessera.billing.gateways.stripe import get_gateway
from tessera.billing.invoices import LineSpec, create_draft_invoice, issue_invoice, void_invoice
from tessera.billing.lock_objects import lock_transaction
from tessera.billing.models import Invoice, Transaction
from tessera.billing.services import apply_result, settle_from_gateway
from tessera.core.money import Money
from tessera.crm.services import record_timeline
from tessera.events import capacity
from tessera.events.lock_objects import lock_checkout
from tessera.events.models import Attendee, Checkout, WaitlistEntry
from tessera.events.requests import CheckoutOutcome
from tessera.events.waitlist import release_places
from tessera.loyalty.models import WalletTransaction

logger = logging.getLogger(__name__)
S = Checkout.Status


def complete(
    checkout: Checkout,
    *,
    txn: Transaction | None = None,
    wallet_transaction: WalletTransaction | None = None,
    attendees: list[Attendee] | None = None,
    invoice: Invoice | None = None,
    take: Callable[[], WalletTransaction | None] | None = None,
) -> None:
    """Register the attendees, issue the invoice (paid), queue the confirmation. Given the
    attendees and the invoice written in this same transaction, it reads neither back.
    ``take`` (a free or points checkout) takes the places and the points after every
    other write and before the invoice's number, so the rows all checkouts share stay
    locked only for the end of the transaction; what it raises rolls all of it back."""
    if checkout.status in (S.PAID, S.FREE):
        return
    now = timezone.now()
    if attendees is None:
        attendees = list(checkout.attendees.select_related("contact"))
    if any(a.status != Attendee.Status.REGISTERED for a in attendees):
        Attendee.objects.filter(checkout=checkout).update(
            status=Attendee.Status.REGISTERED, registered_at=now
        )
        for attendee in attendees:
            attendee.status, attendee.registered_at = Attendee.Status.REGISTERED, now
    if checkout.waitlist_entry_id:
        WaitlistEntry.objects.filter(pk=checkout.waitlist_entry_id).update(
            status=WaitlistEntry.Status.REDEEMED
        )
    _timeline(checkout, attendees)
    from tessera.events.tasks import send_confirmation_task

    send_confirmation_task.enqueue(checkout.pk)
    if take is not None:
        wallet_transaction = take() or wallet_transaction
    _mark_completed(checkout, now, txn, wallet_transaction)
    if checkout.invoice_id:  # last: the numbering counter is one row every checkout shares
        issued = issue_invoice(invoice if invoice is not None else checkout.invoice_id, paid=True)
        checkout.invoice = issued


def _mark_completed(
    checkout: Checkout,
    now: datetime,
    txn: Transaction | None,
    wallet_transaction: WalletTransaction | None,
) -> None:
    checkout.status = S.PAID if checkout.total > 0 else S.FREE
    checkout.completed_at = now
    checkout.hold_expires_at = None
    checkout.failure_code = checkout.failure_message = ""
    if txn is not None:
        checkout.transaction = txn
        Transaction.objects.filter(pk=txn.pk).update(invoice=checkout.invoice_id)
    if wallet_transaction is not None:
        checkout.wallet_transaction = wallet_transaction
    checkout.save(
        update_fields=[
            "status",
            "completed_at",
            "hold_expires_at",
            "failure_code",
            "failure_message",
            "transaction",
            "wallet_transaction",
        ]
    )


def _timeline(checkout: Checkout, attendees: list[Attendee]) -> None:
    event = checkout.event
    for attendee in attendees:
        record_timeline(
            attendee.contact,
            kind="attendee",
            obj=attendee,
            summary=f"Registered for {event.name}",
            data={"event_id": event.pk, "checkout_id": checkout.pk, "status": attendee.status},
        )


def fail(
    checkout: Checkout, code: str, message: str, *, status: str = S.FAILED, held: bool = True
) -> None:
    """Give back what the checkout held; keep its records, marked, for the audit trail.
    ``held=False``: it failed before taking anything, so nothing is given back."""
    if checkout.is_final:
        return
    if held:
        release(checkout)
    else:
        checkout.released = True
    now = timezone.now()
    checkout.attendees.exclude(status=Attendee.Status.CANCELLED).update(
        status=Attendee.Status.CANCELLED, cancelled_at=now
    )
    if checkout.invoice_id:
        void_invoice(checkout.invoice_id)
    checkout.status = status
    checkout.failure_code = code[:100]
    checkout.failure_message = message[:500]
    checkout.hold_expires_at = None
    checkout.completed_at = now
    checkout.save(
        update_fields=[
            "status",
            "failure_code",
            "failure_message",
            "hold_expires_at",
            "completed_at",
            "released",
        ]
    )


def release(checkout: Checkout) -> None:
    """Give back the places (first to the waitlist) and the promo code's use the checkout
    took, once."""
    if checkout.released:
        return
    release_places(checkout.event_id, checkout.held_items, checkout.held_places)
    if checkout.promo_code_id:
        capacity.give_back_promo_use(checkout.promo_code_id)
    checkout.released = True
    checkout.save(update_fields=["released"])


def settle_checkout(txn: Transaction) -> None:
    """Billing's settler for ``checkout`` payments (called with the transaction locked)."""
    checkout = lock_checkout(txn.purpose_id)
    if txn.status == Transaction.Status.CAPTURED:
        if checkout.released and not _take_again(checkout):
            _refund_later(checkout, txn)
            return
        complete(checkout, txn=txn)
    elif txn.status in (Transaction.Status.FAILED, Transaction.Status.CANCELED):
        if checkout.transaction_id is None:
            Checkout.objects.filter(pk=checkout.pk).update(transaction=txn)
        expired = txn.failure_code == "hold_expired"
        fail(
            checkout,
            txn.failure_code or txn.status,
            txn.failure_message,
            status=S.EXPIRED if expired else S.FAILED,
        )


def _take_again(checkout: Checkout) -> bool:
    """A payment captured after its checkout gave its places back (3-D Secure finished as
    the hold expired): register it if the places are still free."""
    try:
        with transaction.atomic():
            capacity.take_places(checkout.event, checkout.held_items, checkout.held_places)
            if checkout.promo_code_id:
                capacity.take_promo_use(checkout.promo_code)  # type: ignore[arg-type]
    except (capacity.SoldOut, capacity.PromoCodeUsedUp):
        return False
    Attendee.objects.filter(checkout=checkout).update(
        status=Attendee.Status.PENDING, cancelled_at=None
    )
    checkout.invoice = _redraw_invoice(checkout)
    checkout.released = False
    checkout.save(update_fields=["released", "invoice"])
    return True


def _redraw_invoice(checkout: Checkout) -> Invoice:
    """A new draft with the lines of the one voided when the places were released: a void
    invoice is final, even one that was never numbered."""
    old = Invoice.objects.get(pk=checkout.invoice_id)
    lines = [
        LineSpec(
            item_id=line.item_id,
            attendee_id=line.attendee_id,
            description=line.description,
            quantity=line.quantity,
            unit_price=line.unit_price,
            discount=line.discount,
            tax_rate_bp=line.tax_rate_bp,
            tax_inclusive=line.tax_inclusive,
        )
        for line in old.lines.order_by("position")
    ]
    return create_draft_invoice(
        bill_to=checkout.buyer, currency=old.currency, lines=lines, reference=checkout.pk
    )


def _refund_later(checkout: Checkout, txn: Transaction) -> None:
    """The money came in for places no longer free: give it back (after this commits, by
    the worker: a refund calls Stripe, never inside a transaction)."""
    from tessera.events.tasks import refund_unplaced_task

    logger.warning("checkout %s captured after its places went; refunding %s", checkout.pk, txn.pk)
    Checkout.objects.filter(pk=checkout.pk).update(
        transaction=txn, failure_code="captured_after_release"
    )
    refund_unplaced_task.enqueue(txn.pk)


def expire_holds(limit: int = 200) -> int:
    """Checkouts whose hold ran out before they were paid: their payment is cancelled at
    Stripe (or found captured after all, and then completed) and their places released."""
    now = timezone.now()
    due = list(
        Checkout.objects.filter(
            Q(status=S.PENDING) | Q(status=S.REQUIRES_ACTION), hold_expires_at__lt=now
        ).values_list("pk", flat=True)[:limit]
    )
    for checkout_id in due:
        try:
            expire_one(checkout_id)
        except GatewayUnavailable:
            logger.warning("Stripe unreachable; checkout %s expires on a later run", checkout_id)
    return len(due)


def expire_one(checkout_id: str) -> None:
    checkout = Checkout.objects.select_related("transaction").get(pk=checkout_id)
    txn = (
        checkout.transaction
        or Transaction.objects.filter(purpose="checkout", purpose_id=checkout.pk).first()
    )
    if txn is not None and txn.stripe_payment_intent_id and txn.status == "pending":
        try:
            result = get_gateway().cancel(
                txn.stripe_payment_intent_id, idempotency_key=f"txn:{txn.pk}:cancel"
            )
        except GatewayRejected:  # it succeeded meanwhile, or cannot be cancelled: ask
            settle_from_gateway(txn.pk)
            return
        with transaction.atomic():
            locked = lock_transaction(txn.pk)
            apply_result(locked, replace(result, failure_code="hold_expired"))
        return
    with transaction.atomic():
        fail(
            lock_checkout(checkout_id),
            "hold_expired",
            "The places were held for the payment, which did not come in time.",
            status=S.EXPIRED,
        )


def describe(checkout: Checkout) -> CheckoutOutcome:
    return CheckoutOutcome(checkout.pk, checkout.status)


def loaded(checkout: Checkout, attendees: list[Attendee], invoice: Invoice) -> CheckoutOutcome:
    """The outcome with the records as written, so that answering reads nothing back."""
    checkout.invoice = invoice
    cached = checkout.attendees.all()
    cached._result_cache = list(attendees)
    cached._prefetch_done = True  # type: ignore[attr-defined]
    checkout._prefetched_objects_cache = {"attendees": cached}  # type: ignore[attr-defined]
    return CheckoutOutcome(checkout.pk, checkout.status, checkout=checkout)


def total_text(checkout: Checkout) -> str:
    return Money(checkout.total, checkout.currency).format(settings.TESSERA_LOCALE)
