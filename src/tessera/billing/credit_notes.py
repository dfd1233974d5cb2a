"""Credit notes: what is left to credit on an invoice, and credit notes that give it back.

A credit note is an invoice of its own kind and numbering (CN-2026-00001) with negative
lines, each pointing at the invoice line it gives back, so what is left to credit is
known per line and per tax rate, and a credit note's per-rate breakdown is right for the
tax return. Refunds and cancellations issue them; an issued invoice itself never changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, Sum

from tessera.billing.invoices import (
    ISSUED,
    LineSpec,
    Priced,
    PricedLine,
    assign_number,
    divide_half_even,
    money_text,
    summarise,
    timeline_data,
    write_invoice,
)
from tessera.billing.lock_objects import lock_invoice
from tessera.billing.models import Invoice, InvoiceLine
from tessera.core.errors import Conflict, ValidationFailed
from tessera.core.money import Money
from tessera.crm.services import record_timeline

__all__ = [
    "CreditExceedsRemaining",
    "credited_amount",
    "issue_credit_note",
    "remaining",
    "remaining_for_attendee",
]

CREDIT_NOTE_PREFIX = "CN"


class CreditExceedsRemaining(Conflict):
    code = "refund_exceeds_remaining"
    title = "The refund is larger than what is left to refund"


def credited_amount(invoice: Invoice) -> int:
    """How much the invoice's credit notes give back (a positive number)."""
    notes = invoice.credit_notes.filter(status__in=ISSUED)
    return -(notes.aggregate(total=Sum("total"))["total"] or 0)


def remaining(invoice: Invoice) -> int:
    """What is left to credit on the invoice: its total less its credit notes."""
    return invoice.total - credited_amount(invoice)


def remaining_for_attendee(invoice: Invoice, attendee_id: str) -> int:
    """What is left to credit of one attendee's lines, after the credit notes so far."""
    return sum(o.amount for o in _open_lines(invoice) if o.line.attendee_id == attendee_id)


@dataclass(frozen=True, slots=True)
class _OpenLine:
    """An invoice line and what is left of it after the credit notes so far."""

    line: InvoiceLine
    amount: int
    tax: int
    credited: bool  # some credit note gave back part of it already


def _open_lines(invoice: Invoice) -> list[_OpenLine]:
    given_back = {
        row["credits_line"]: row
        for row in InvoiceLine.objects.filter(
            credits_line__invoice=invoice, invoice__status__in=ISSUED
        )
        .order_by()
        .values("credits_line")
        .annotate(amount=Sum("amount"), tax=Sum("tax"), n=Count("id"))
    }
    open_lines = []
    for line in invoice.lines.order_by("position", "pk"):
        back = given_back.get(line.pk, {"amount": 0, "tax": 0, "n": 0})
        open_lines.append(
            _OpenLine(line, line.amount + back["amount"], line.tax + back["tax"], back["n"] > 0)
        )
    return open_lines


def _shares(invoice: Invoice, scope: list[_OpenLine], amount: int | None, what: str) -> list[int]:
    """What each line of ``scope`` gives back: all that is left of it, or ``amount``
    spread in proportion to what is left of each line (to the cent, by Money.allocate)."""
    left = sum(o.amount for o in scope)
    if amount is None:
        return [o.amount for o in scope]
    if amount > left:
        asked, left_text, total = (
            money_text(m, invoice.currency) for m in (amount, left, invoice.total)
        )
        raise CreditExceedsRemaining(
            f"{asked} asked; {left_text} of {total} is left to refund on {what}.", remaining=left
        )
    # Lines with nothing left take no share (allocate would hand them remainder cents).
    weighted = [i for i, o in enumerate(scope) if o.amount > 0]
    parts = Money(amount, invoice.currency).allocate([scope[i].amount for i in weighted])
    shares = [0] * len(scope)
    for i, part in zip(weighted, parts, strict=True):
        shares[i] = part.amount
    return shares


def _credit_line(open_line: _OpenLine, share: int, whole: bool) -> PricedLine | None:
    """The negative line giving ``share`` (tax included) of ``open_line`` back; None when
    it gives nothing. A line given back whole the first time is its exact negation (a
    free ticket on a cancellation too); a part carries its proportional share of the
    line's remaining tax, so the per-rate breakdown stays right."""
    line = open_line.line
    first_and_whole = not open_line.credited and share == line.amount
    if first_and_whole and (whole or share != 0):
        spec = LineSpec(
            line.item_id, line.attendee_id, line.description, line.quantity,
            -line.unit_price, -line.discount, line.tax_rate_bp, line.tax_inclusive,
        )  # fmt: skip
        return PricedLine(spec, net=-line.net, tax=-line.tax, amount=-line.amount)
    if share == 0:
        return None
    tax = divide_half_even(share * open_line.tax, open_line.amount)
    net = share - tax
    # One unit whose price is what the line's own pricing would read back: the net for an
    # exclusive line, the gross for an inclusive one.
    unit = share if line.tax_inclusive else net
    spec = LineSpec(
        line.item_id, line.attendee_id, line.description, 1, -unit, 0,
        line.tax_rate_bp, line.tax_inclusive,
    )  # fmt: skip
    return PricedLine(spec, net=-net, tax=-tax, amount=-share)


def _check_creditable(invoice: Invoice) -> None:
    if invoice.kind == Invoice.Kind.CREDIT_NOTE:
        raise Conflict(f"{invoice.number} is a credit note; credit the invoice it refers to.")
    if invoice.status not in ISSUED:
        raise Conflict(f"Invoice {invoice.pk} is {invoice.status}; only issued ones are credited.")


def issue_credit_note(
    invoice_id: str,
    *,
    attendee_id: str | None = None,
    amount: int | None = None,
    reason: str = "",
) -> Invoice:
    """Issue a credit note (CN-<year>-NNNNN) against an issued invoice, with negative lines:

    - ``attendee_id`` alone: what is left of that attendee's lines (a cancellation: the
      exact negation of their lines the first time);
    - ``amount`` (minor units, tax included): spread over the lines in proportion to what
      is left of each (of the attendee's lines only, if ``attendee_id`` is given too);
    - neither: everything left on the invoice.

    Its status is paid on a paid invoice (settled by the refund the caller makes) and open
    on an open one. The invoice row is locked while what is left is computed, so two
    credit notes at once cannot give back more than the invoice: CreditExceedsRemaining
    (409 ``refund_exceeds_remaining``) beyond it. The number is allocated last (see
    ``allocate_number``); a line goes on the contact's timeline.
    """
    if amount is not None and amount <= 0:
        raise ValidationFailed.field("amount", "must be positive")
    with transaction.atomic():
        invoice = lock_invoice(invoice_id)
        _check_creditable(invoice)
        priced, credits_lines = _credit_lines(invoice, attendee_id, amount)
        note = Invoice(
            kind=Invoice.Kind.CREDIT_NOTE,
            prefix=CREDIT_NOTE_PREFIX,
            bill_to=invoice.bill_to,
            currency=invoice.currency,
            credits=invoice,
            reference=invoice.reference,
            reason=reason[:255],
        )
        write_invoice(note, priced, credits_lines)
        paid = invoice.status == Invoice.Status.PAID
        assign_number(note, Invoice.Status.PAID if paid else Invoice.Status.OPEN)
        record_timeline(
            invoice.bill_to,
            kind="credit_note",
            obj=note,
            summary=f"Credit note {note.number} for invoice {invoice.number}: "
            f"{money_text(note.total, note.currency)}",
            data={**timeline_data(note), "credits": invoice.number},
        )
    return note


def _credit_lines(
    invoice: Invoice, attendee_id: str | None, amount: int | None
) -> tuple[Priced, list[str]]:
    """The credit note's lines (priced) and the invoice line each one gives back."""
    scope, what = _open_lines(invoice), f"invoice {invoice.number}"
    if attendee_id is not None:
        scope = [o for o in scope if o.line.attendee_id == attendee_id]
        what = f"attendee {attendee_id} of invoice {invoice.number}"
        if not scope:
            raise ValidationFailed.field("attendee_id", f"has no lines on {invoice.number}")
    shares = _shares(invoice, scope, amount, what)
    credit = [(o, _credit_line(o, s, amount is None)) for o, s in zip(scope, shares, strict=True)]
    kept = [(o.line.pk, c) for o, c in credit if c is not None]
    if not kept:
        raise CreditExceedsRemaining(f"Nothing is left to refund on {what}.", remaining=0)
    return summarise(invoice.currency, [c for _, c in kept]), [pk for pk, _ in kept]
