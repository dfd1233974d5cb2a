"""Cancelling a ticket and refunding an invoice.

An issued invoice never changes: what is given back is a credit note (its own number,
negative lines). A card refund goes through the billing refund saga, which calls Stripe
outside any transaction; billing lets the owner of the payment reverse what it bought
while the refund is reserved (``on_refund``), and that is where the credit note is
issued, bounded by what remains on the invoice. Points go back to the wallet they came
from in the same transaction as the credit note.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from tessera.billing.credit_notes import (
    credited_amount,
    issue_credit_note,
    remaining,
    remaining_for_attendee,
)
from tessera.billing.models import Invoice, InvoiceLine, Refund, Transaction
from tessera.billing.refunds import RefundExceedsRemaining, refund_transaction
from tessera.core.errors import Conflict
from tessera.core.lookup import get_by_id
from tessera.core.money import Money
from tessera.crm.services import record_timeline
from tessera.events.lock_objects import lock_attendee, lock_checkout
from tessera.events.models import Attendee, Checkout, EventItem
from tessera.events.waitlist import release_places
from tessera.loyalty.models import WalletTransaction
from tessera.loyalty.wallet import move_points

A = Attendee.Status


@dataclass(frozen=True)
class CreditFor:
    """What the refund about to be reserved pays back: one attendee's lines, or an amount
    spread over the invoice (None)."""

    attendee_id: str | None
    reason: str


_credit_for: ContextVar[CreditFor | None] = ContextVar("credit_for", default=None)


@contextmanager
def crediting(what: CreditFor) -> Iterator[None]:
    token = _credit_for.set(what)
    try:
        yield
    finally:
        _credit_for.reset(token)


@dataclass(frozen=True)
class Refunded:
    """A refund of (part of) a checkout: the credit note, and the card refund if any."""

    credit_note: Invoice
    refund: Refund | None
    points: int = 0


def refund_checkout_payment(txn: Transaction, refund: Refund) -> None:
    """Billing's ``on_refund`` for checkout payments, inside the refund's reservation."""
    if refund.status != Refund.Status.PENDING:
        return  # a refund that failed at Stripe keeps its credit note; the admin is emailed
    if Invoice.objects.filter(kind="credit_note", reference=refund.pk).exists():
        return
    checkout = Checkout.objects.get(pk=txn.purpose_id)
    if checkout.status != Checkout.Status.PAID:
        return  # never registered (money captured after its places went): no invoice to credit
    what = _credit_for.get() or CreditFor(None, refund.reason)
    amount = None if what.attendee_id else refund.amount
    note = issue_credit_note(
        _invoice_of(checkout), attendee_id=what.attendee_id, amount=amount, reason=what.reason
    )
    Invoice.objects.filter(pk=note.pk).update(reference=refund.pk)


def _invoice_of(checkout: Checkout) -> str:
    if checkout.invoice_id is None:
        raise Conflict(f"Checkout {checkout.pk} has no invoice to credit.")
    return checkout.invoice_id


def refund_invoice(
    invoice_id: str, *, amount: int | None, reason: str, request_key: str | None = None
) -> Refunded:
    """Refund part or all of what an invoice's checkout paid (409 beyond what remains)."""
    invoice = get_by_id(Invoice, invoice_id, "invoice")
    checkout = Checkout.objects.filter(invoice=invoice).select_related("transaction").first()
    if checkout is None or invoice.status != "paid":
        raise Conflict(f"Invoice {invoice_id} is {invoice.status}; only paid checkouts refund.")
    left = remaining(invoice)
    amount = left if amount is None else amount
    if left <= 0 or amount > left:
        raise RefundExceedsRemaining(
            f"{amount} asked, {left} of {invoice.total} left on {invoice.number}.", remaining=left
        )
    return _refund(checkout, amount, CreditFor(None, reason), request_key)


def _refund(checkout: Checkout, amount: int, what: CreditFor, request_key: str | None) -> Refunded:
    if checkout.payment == Checkout.Payment.CARD and checkout.transaction_id:
        with crediting(what):
            refund = refund_transaction(
                checkout.transaction_id,
                amount=amount,
                reason=what.reason,
                request_key=request_key,
            )
        note = Invoice.objects.get(kind="credit_note", reference=refund.pk)
        return Refunded(note, refund)
    with transaction.atomic():
        locked = lock_checkout(checkout.pk)
        note = issue_credit_note(
            _invoice_of(locked),
            attendee_id=what.attendee_id,
            amount=None if what.attendee_id else amount,
            reason=what.reason,
        )
        points = _points_back(locked, -note.total, note)
    return Refunded(note, None, points)


def _points_back(checkout: Checkout, money: int, note: Invoice) -> int:
    """Points for a wallet-paid checkout's credit note, on the running total so that
    several partial refunds return exactly what one full refund would."""
    if checkout.payment != Checkout.Payment.WALLET or checkout.total <= 0 or not money:
        return 0
    invoice = Invoice.objects.get(pk=checkout.invoice_id)
    credited = credited_amount(invoice)
    before = credited - money
    points = (
        checkout.points * credited // checkout.total - checkout.points * before // checkout.total
    )
    if points <= 0 or checkout.member is None:
        return 0
    move_points(
        checkout.member,
        type=WalletTransaction.Type.ORDER_REFUNDED,
        points=points,
        reference=f"checkout_refund:{note.pk}",
        counter=checkout.member.program.redemption_account,
        object_type="invoice",
        object_id=note.pk,
        detail={
            "event_id": checkout.event_id,
            "checkout_id": checkout.pk,
            "credit_note": note.number,
        },
        new_lot=False,
    )
    return points


def cancel_attendee(
    attendee_id: str, *, refund: bool, request_key: str | None = None
) -> tuple[Attendee, Refunded | None]:
    """Cancel a ticket: its places back (offered to the waitlist), and with ``refund`` a
    credit note for the attendee's lines and the money or points back."""
    with transaction.atomic():
        attendee = lock_attendee(attendee_id, "checkout", "event", "contact")
        _refuse_unless_registered(attendee)
        lines = _attendee_lines(attendee.checkout, attendee.pk)
        # Read once, under the attendee's lock: what the refund below pays back is what
        # this check allowed.
        amount = _refundable(attendee, lines) if refund else 0
        attendee.status = A.CANCELLED
        attendee.cancelled_at = timezone.now()
        attendee.save(update_fields=["status", "cancelled_at"])
        _give_back_lines(attendee, lines)
        record_timeline(
            attendee.contact,
            kind="attendee_cancelled",
            obj=attendee,
            summary=f"Cancelled: {attendee.event.name}",
            data={"refund": refund},
        )
    if amount <= 0:
        return attendee, None
    checkout = Checkout.objects.select_related("transaction", "member__program").get(
        pk=attendee.checkout_id
    )
    return attendee, _refund(
        checkout, amount, CreditFor(attendee.pk, "ticket cancelled"), request_key
    )


def _refuse_unless_registered(attendee: Attendee) -> None:
    if attendee.status == A.CANCELLED:
        raise Conflict("This ticket is already cancelled.", code="cancelled")
    if attendee.status != A.REGISTERED:
        raise Conflict(
            f"The attendee is {attendee.status}; only registered tickets cancel.",
            code="not_registered",
        )


def _refundable(attendee: Attendee, lines: list[InvoiceLine]) -> int:
    """What is left to refund of the ticket's lines (earlier refunds of the invoice credit
    them too, and the money follows the credit note). Refused when the lines were paid
    and nothing is left, before the ticket is cancelled: a refused request cancels
    nothing."""
    checkout = attendee.checkout
    if checkout.invoice_id is None:
        return 0
    left = remaining_for_attendee(Invoice.objects.get(pk=checkout.invoice_id), attendee.pk)
    paid = sum(line.amount for line in lines)
    if paid > 0 and left <= 0:
        money = Money(paid, checkout.currency).format(settings.TESSERA_LOCALE)
        raise RefundExceedsRemaining(
            f"Nothing is left to refund of this ticket's {money}: the invoice was refunded "
            "already. Cancel it without a refund.",
            remaining=0,
        )
    return left


def _attendee_lines(checkout: Checkout, attendee_id: str) -> list[InvoiceLine]:
    return list(InvoiceLine.objects.filter(invoice_id=checkout.invoice_id, attendee_id=attendee_id))


def _give_back_lines(attendee: Attendee, lines: list[InvoiceLine]) -> None:
    held: dict[str, int] = defaultdict(int)
    for line in lines:
        if line.item_id:
            held[line.item_id] += line.quantity
    places = 1 if EventItem.objects.get(pk=attendee.ticket_id).takes_a_place else 0
    release_places(attendee.event_id, held, places)
