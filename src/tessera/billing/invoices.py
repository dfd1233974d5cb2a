"""Invoices: pricing, drafts, gapless numbers, issuing and voiding (credit notes, which
are invoices of their own kind, are issued by ``billing.credit_notes``).

Why it is built this way:

- ``price_lines`` is pure (no database), so the checkout can check that a payment fits
  the total before it writes anything, and price again cheaply when it does.
- Numbers come from a counter row incremented inside the issuing transaction, not from a
  database sequence: a sequence burns the numbers of rolled-back transactions, and
  invoice numbers must be gapless. The price is that the counter row stays locked until
  the issuing transaction ends, so issuing is the LAST step of a caller's transaction.
- An issued invoice never changes. Refunds and cancellations issue credit notes instead
  (``billing.credit_notes``), written and numbered by the same functions as invoices.
- Billing sits below ``events`` and ``loyalty``: lines name what they sell by plain ids.

``create_draft_invoice`` and ``issue_invoice`` run without a savepoint of their own (the
checkout's query budget is tight): an error they raise dooms the caller's transaction,
which is what a checkout wants anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Prefetch
from django.utils import timezone

from tessera.billing.invoice_pdf import InvoicePdf, invoice_pdf, render_invoice_pdf
from tessera.billing.lock_objects import lock_invoice
from tessera.billing.models import Invoice, InvoiceLine, InvoiceSequence
from tessera.core.errors import Conflict
from tessera.core.lookup import get_by_id
from tessera.core.money import Money, validate_currency
from tessera.crm.models import Contact
from tessera.crm.services import record_timeline

__all__ = [
    "LineSpec",
    "Priced",
    "PricedLine",
    "TaxAmount",
    "allocate_number",
    "create_draft_invoice",
    "get_invoice",
    "get_invoice_pdf",
    "issue_invoice",
    "price_lines",
    "render_invoice_pdf",
    "void_invoice",
]

INVOICE_PREFIX = "INV"
BASIS_POINTS = 10_000  # 100%
MAX_TAX_RATE_BP = BASIS_POINTS  # no sales tax or VAT exceeds 100%; more is a typo
ID_MAX = 40  # InvoiceLine.item_id and attendee_id
REFERENCE_MAX = 64
DESCRIPTION_MAX = 255
ISSUED = (Invoice.Status.OPEN, Invoice.Status.PAID)


# --- pricing (pure) ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LineSpec:
    """One line to invoice. ``discount`` is in minor units, already allocated to this line
    by the caller (a promo code spread over lines with ``Money.allocate``)."""

    item_id: str
    attendee_id: str
    description: str
    quantity: int
    unit_price: int
    discount: int = 0
    tax_rate_bp: int = 0
    tax_inclusive: bool = False


@dataclass(frozen=True, slots=True)
class PricedLine:
    spec: LineSpec
    net: int
    tax: int
    amount: int  # what the line costs, tax included: net + tax


@dataclass(frozen=True, slots=True)
class TaxAmount:
    rate_bp: int
    net: int
    tax: int

    def as_dict(self) -> dict[str, int]:
        return {"rate_bp": self.rate_bp, "net": self.net, "tax": self.tax}


@dataclass(frozen=True, slots=True)
class Priced:
    currency: str
    lines: tuple[PricedLine, ...]
    subtotal: int  # sum of quantity x unit price, before discounts
    discount: int
    tax: int
    total: int  # sum of the lines' amounts: what is payable
    tax_breakdown: tuple[TaxAmount, ...]  # one per rate, lowest rate first


def divide_half_even(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded half to even, in integers (``denominator > 0``):
    banker's rounding does not drift upwards over many lines as half-up does."""
    quotient, rest = divmod(numerator, denominator)  # rest in [0, denominator) for any sign
    if 2 * rest > denominator or (2 * rest == denominator and quotient % 2):
        quotient += 1
    return quotient


def _check_spec(spec: LineSpec) -> int:
    """The line's gross (quantity x unit price), or ValueError for a line we cannot price."""
    for name in ("quantity", "unit_price", "discount", "tax_rate_bp"):
        value = getattr(spec, name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if spec.quantity <= 0:
        raise ValueError(f"quantity must be positive, got {spec.quantity}")
    if spec.unit_price < 0 or spec.discount < 0:
        raise ValueError("unit_price and discount must not be negative")
    if not 0 <= spec.tax_rate_bp <= MAX_TAX_RATE_BP:
        raise ValueError(f"tax_rate_bp must be 0..{MAX_TAX_RATE_BP}, got {spec.tax_rate_bp}")
    if len(spec.item_id) > ID_MAX or len(spec.attendee_id) > ID_MAX:
        raise ValueError(f"item_id and attendee_id hold at most {ID_MAX} characters")
    gross = spec.quantity * spec.unit_price
    if spec.discount > gross:
        raise ValueError(f"discount {spec.discount} is more than the line's {gross}")
    return gross


def price_line(spec: LineSpec) -> PricedLine:
    """Exclusive: tax is added to the discounted net. Inclusive: the discounted gross is
    the amount, and the tax is the part of it above the net."""
    gross = _check_spec(spec) - spec.discount
    if spec.tax_inclusive:
        net = divide_half_even(gross * BASIS_POINTS, BASIS_POINTS + spec.tax_rate_bp)
        return PricedLine(spec, net=net, tax=gross - net, amount=gross)
    tax = divide_half_even(gross * spec.tax_rate_bp, BASIS_POINTS)
    return PricedLine(spec, net=gross, tax=tax, amount=gross + tax)


def summarise(currency: str, lines: Sequence[PricedLine]) -> Priced:
    """Totals and the per-rate breakdown of lines already priced (credit notes build
    their negative lines themselves and total them here too)."""
    rates: dict[int, tuple[int, int]] = {}
    for line in lines:
        net, tax = rates.get(line.spec.tax_rate_bp, (0, 0))
        rates[line.spec.tax_rate_bp] = (net + line.net, tax + line.tax)
    return Priced(
        currency=currency,
        lines=tuple(lines),
        subtotal=sum(line.spec.quantity * line.spec.unit_price for line in lines),
        discount=sum(line.spec.discount for line in lines),
        tax=sum(line.tax for line in lines),
        total=sum(line.amount for line in lines),
        tax_breakdown=tuple(TaxAmount(r, net, tax) for r, (net, tax) in sorted(rates.items())),
    )


def price_lines(lines: Sequence[LineSpec], currency: str) -> Priced:
    """Price every line and total them, in integer minor units; no database access.
    ValueError for an unknown currency or a line that cannot be priced (a discount above
    the line's gross, a non-positive quantity, a negative price)."""
    return summarise(validate_currency(currency), [price_line(spec) for spec in lines])


# --- drafts, numbers, issuing ---------------------------------------------------------------


def create_draft_invoice(
    *,
    bill_to: Contact,
    currency: str,
    lines: Sequence[LineSpec],
    reference: str,
    invoice_id: str | None = None,
) -> Invoice:
    """A draft invoice (no number yet) with its lines: two INSERTs. ``reference`` is the
    owner's id (a checkout's, say), indexed so the owner finds its invoice; ``invoice_id``
    lets the owner point at the invoice before it is written (in the same transaction).
    ValueError as ``price_lines``. ``invoice.lines.all()`` on the result needs no query."""
    if len(reference) > REFERENCE_MAX:
        raise ValueError(f"reference holds at most {REFERENCE_MAX} characters")
    priced = price_lines(lines, currency)
    draft = Invoice(
        **({"id": invoice_id} if invoice_id else {}),
        kind=Invoice.Kind.INVOICE,
        prefix=INVOICE_PREFIX,
        bill_to=bill_to,
        currency=priced.currency,
        reference=reference,
    )
    return write_invoice(draft, priced)


def write_invoice(invoice: Invoice, priced: Priced, credits_lines: Sequence[str] = ()) -> Invoice:
    """Insert ``invoice`` with ``priced``'s totals and lines (a line credits the invoice
    line at the same position of ``credits_lines``, on a credit note)."""
    invoice.subtotal, invoice.discount = priced.subtotal, priced.discount
    invoice.tax, invoice.total = priced.tax, priced.total
    invoice.tax_breakdown = [t.as_dict() for t in priced.tax_breakdown]
    rows = [
        InvoiceLine(
            invoice=invoice,
            item_id=line.spec.item_id,
            attendee_id=line.spec.attendee_id,
            description=line.spec.description[:DESCRIPTION_MAX],
            quantity=line.spec.quantity,
            unit_price=line.spec.unit_price,
            discount=line.spec.discount,
            tax_rate_bp=line.spec.tax_rate_bp,
            tax_inclusive=line.spec.tax_inclusive,
            net=line.net,
            tax=line.tax,
            amount=line.amount,
            position=position,
            credits_line_id=credits_lines[position] if credits_lines else None,
        )
        for position, line in enumerate(priced.lines)
    ]
    with transaction.atomic(savepoint=False):
        invoice.save(force_insert=True)
        InvoiceLine.objects.bulk_create(rows)
    # As prefetch_related would leave it: the caller renders the lines without a query.
    cached = invoice.lines.all()
    cached._result_cache = rows
    cached._prefetch_done = True  # type: ignore[attr-defined]
    invoice._prefetched_objects_cache = {"lines": cached}  # type: ignore[attr-defined]
    return invoice


def allocate_number(prefix: str, year: int) -> str:
    """The next number for ``prefix`` and ``year``: ``INV-2026-00001``, then 00002, …

    Must run inside the transaction that issues the invoice. The counter row it
    increments stays locked until that transaction ends, which is what makes numbers
    gapless (a rollback undoes the increment, so the number is given to the next issuer)
    and sequential (the next issuer waits and reads the committed value). It is also why
    every other issuer of the same prefix and year waits for the caller to commit: call
    this LAST in the success transaction, after every check and every slow step, and
    commit promptly (never across a Stripe call, rule 4).

    One statement, an upsert: it creates the year's row at 1 or increments it, and
    returns the value. Two first invoices of a year at once cannot both insert: the second
    waits on the unique index until the first commits (then increments to 2) or rolls
    back (then inserts 1). The ORM has no atomic "increment and return" that also creates
    the row, hence the SQL (PostgreSQL, and SQLite >= 3.35, whose writers are serialised
    by BEGIN IMMEDIATE anyway).
    """
    if not connection.in_atomic_block:
        raise RuntimeError("allocate_number must run in the issuing transaction")
    q = connection.ops.quote_name
    table = q(InvoiceSequence._meta.db_table)
    prefix_col, year_col, last_col = q("prefix"), q("year"), q("last")
    sql = (
        f"INSERT INTO {table} ({prefix_col}, {year_col}, {last_col}) VALUES (%s, %s, 1) "  # noqa: S608 (names only)
        f"ON CONFLICT ({prefix_col}, {year_col}) "
        f"DO UPDATE SET {last_col} = {table}.{last_col} + 1 RETURNING {last_col}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [prefix, year])
        (last,) = cursor.fetchone()
    return f"{prefix}-{year}-{last:05d}"


def assign_number(invoice: Invoice, status: str) -> None:
    """Number and date an invoice or credit note as it is issued (see ``allocate_number``:
    the last step of the issuing transaction)."""
    now = timezone.now()
    invoice.number = allocate_number(invoice.prefix, timezone.localtime(now).year)
    invoice.status, invoice.issued_at = status, now
    invoice.save(update_fields=["number", "status", "issued_at"])


def money_text(amount: int, currency: str) -> str:
    """An amount as people read it, in the site's locale (rule 1)."""
    return Money(amount, currency).format(settings.TESSERA_LOCALE)


def issue_invoice(invoice_id: str | Invoice, *, paid: bool) -> Invoice:
    """Issue a draft: status paid (or open), its number allocated, dated now, and a line on
    the bill-to contact's timeline. Runs in the caller's transaction and holds the number
    counter's lock until it ends: call it LAST in the success transaction (see
    ``allocate_number``). Idempotent: an issued invoice is returned unchanged. A void
    invoice is a Conflict. Given the Invoice itself (one the caller created in this very
    transaction, which nobody else can see yet), it is not read and locked again."""
    with transaction.atomic(savepoint=False):
        invoice = invoice_id if isinstance(invoice_id, Invoice) else lock_invoice(invoice_id)
        if invoice.status in ISSUED:
            return invoice
        if invoice.status == Invoice.Status.VOID:
            raise Conflict(f"Invoice {invoice.pk} is void; a void invoice is never issued.")
        assign_number(invoice, Invoice.Status.PAID if paid else Invoice.Status.OPEN)
        total = money_text(invoice.total, invoice.currency)
        record_timeline(
            invoice.bill_to,
            kind="invoice",
            obj=invoice,
            summary=f"Invoice {invoice.number} issued: {total}",
            data=timeline_data(invoice),
        )
    return invoice


def timeline_data(invoice: Invoice) -> dict[str, object]:
    """What a timeline line about an issued invoice or credit note records of it."""
    return {
        "number": invoice.number,
        "status": invoice.status,
        "total": invoice.total,
        "currency": invoice.currency,
    }


def void_invoice(invoice_id: str) -> Invoice:
    """A draft becomes void and is never numbered (voiding a void invoice changes nothing).
    An issued invoice never changes: Conflict; credit it instead."""
    with transaction.atomic():
        invoice = lock_invoice(invoice_id)
        if invoice.status in ISSUED:
            raise Conflict(
                f"Invoice {invoice.number} is issued and never changes; "
                "issue a credit note instead of voiding it."
            )
        if invoice.status == Invoice.Status.DRAFT:
            invoice.status = Invoice.Status.VOID
            invoice.save(update_fields=["status"])
    return invoice


# --- reading ----------------------------------------------------------------------------------


def get_invoice(invoice_id: str) -> Invoice:
    """An invoice or credit note with its bill-to contact, its lines and, for an invoice,
    its issued credit notes (oldest first) read in advance; NotFound if unknown."""
    issued_notes = Invoice.objects.exclude(status=Invoice.Status.DRAFT).order_by("issued_at", "pk")
    invoices = Invoice.objects.select_related("bill_to", "credits").prefetch_related(
        "lines", Prefetch("credit_notes", queryset=issued_notes)
    )
    return get_by_id(invoices, invoice_id, "invoice")


def get_invoice_pdf(invoice_id: str) -> InvoicePdf:
    """The printable invoice or credit note (NotFound if unknown)."""
    return invoice_pdf(get_invoice(invoice_id))
