"""Invoice and credit-note PDFs, drawn with fpdf2.

The text uses fpdf2's core font (Helvetica), so no font file ships with Tessera and none
is embedded in every PDF. Core fonts only hold 256 characters, in the WinAnsi (cp1252)
encoding the PDF declares for them, and fpdf2 raises on anything else; ``pdf_text`` maps
every string we draw into that set first, so no name, address or description can make a
PDF fail ("Zoë Ñandú 王" prints as "Zoë Ñandú ?").

The bytes depend only on the invoice (the creation date is the invoice's own), so the same
invoice renders the same file, and tests can read the text with ``compress=False``.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from babel.dates import format_date
from babel.numbers import format_percent
from django.conf import settings
from django.utils import timezone
from fpdf import FPDF
from fpdf.enums import Align, TableBordersLayout, XPos, YPos

from tessera.billing.models import Invoice, InvoiceLine
from tessera.core.money import Money

FONT = "helvetica"
GREY = (110, 110, 110)
WATERMARK_GREY = (225, 225, 225)
# description, quantity, unit price, discount, tax rate, amount (mm; A4 less the margins)
COLUMNS = (64.0, 14.0, 27.0, 24.0, 17.0, 28.0)
HEADINGS = ("Description", "Qty", "Unit price", "Discount", "Tax", "Amount")
WATERMARKS: dict[str, str] = {
    Invoice.Status.DRAFT: "DRAFT",
    Invoice.Status.VOID: "VOID",
    Invoice.Status.PAID: "PAID",
}
TITLES: dict[str, str] = {Invoice.Kind.INVOICE: "Invoice", Invoice.Kind.CREDIT_NOTE: "Credit note"}


@cache
def _safe_char(char: str) -> str:
    code = ord(char)
    if char == "\n":
        return char
    if code < 0x20 or 0x7F <= code < 0xA0:  # control characters (tab included) draw nothing
        return " " if char == "\t" else ""
    if code <= 0xFF:
        return char  # Latin-1: the same character in WinAnsi
    try:
        # WinAnsi puts the euro sign, curly quotes, dashes, the ellipsis, S and Z with
        # caron, OE and a few more where Latin-1 has control characters (0x80-0x9F):
        # written as those bytes, the core font draws them.
        return char.encode("cp1252").decode("latin-1")
    except UnicodeEncodeError:
        pass
    # Accented letters outside both (ő, ł is not one: it has no decomposition) keep their
    # base letter; a narrow no-break space becomes a space; the rest is a "?".
    base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
    if base and all(0x20 <= ord(c) <= 0xFF and not 0x7F <= ord(c) < 0xA0 for c in base):
        return base
    return "?"


def pdf_text(value: object) -> str:
    """``value`` as text the core font can draw: never raises, whatever the script."""
    return "".join(_safe_char(c) for c in str(value))


# Text is built as Unicode and passed through pdf_text once, where it is drawn (a second
# pass would drop the WinAnsi characters the first one made).


def _money(amount: int, currency: str) -> str:
    return Money(amount, currency).format(settings.TESSERA_LOCALE)


def _rate(rate_bp: int) -> str:
    share = Decimal(rate_bp) / Decimal(10_000)
    return str(format_percent(share, "#,##0.##%", locale=settings.TESSERA_LOCALE))


def _date(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    day = timezone.localtime(moment).date()
    return str(format_date(day, format="long", locale=settings.TESSERA_LOCALE))


class _InvoicePDF(FPDF):
    """A4 pages with the status as a watermark behind every page and the number in the
    footer."""

    def __init__(self, invoice: Invoice) -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.invoice = invoice
        self.set_margins(18, 18, 18)
        self.set_auto_page_break(auto=True, margin=20)

    def header(self) -> None:
        mark = WATERMARKS.get(self.invoice.status)
        if mark is None:
            return
        with self.local_context(text_color=WATERMARK_GREY):
            self.set_font(FONT, "B", 96)
            with self.rotation(35, x=self.w / 2, y=self.h / 2):
                width = self.get_string_width(mark)
                self.text(self.w / 2 - width / 2, self.h / 2 + 12, mark)
        self.set_xy(self.l_margin, self.t_margin)

    def footer(self) -> None:
        self.set_y(-14)
        self.set_font(FONT, "", 8)
        self.set_text_color(*GREY)
        label = pdf_text(self.invoice.number or TITLES[self.invoice.kind])
        self.cell(0, 5, f"{label} - page {self.page_no()}/{{nb}}", align=Align.C)


def _line(pdf: FPDF, text: str, *, size: float = 10, style: str = "", height: float = 5) -> None:
    pdf.set_font(FONT, style, size)
    pdf.multi_cell(0, height, pdf_text(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _seller(pdf: FPDF) -> None:
    _line(pdf, getattr(settings, "TESSERA_SELLER_NAME", "Tessera"), size=16, style="B", height=8)
    address = str(getattr(settings, "TESSERA_SELLER_ADDRESS", "") or "")
    with pdf.local_context(text_color=GREY):
        for part in address.splitlines():
            _line(pdf, part, size=9, height=4.5)
    pdf.ln(6)


def _facts(invoice: Invoice) -> list[tuple[str, str]]:
    facts = [
        ("Number", invoice.number or "not yet issued"),
        ("Date", _date(invoice.issued_at)),
        ("Status", invoice.get_status_display()),
    ]
    if invoice.credits is not None:
        credited = invoice.credits
        facts.append(("Credits invoice", f"{credited.number} of {_date(credited.issued_at)}"))
    if invoice.reason:
        facts.append(("Reason", invoice.reason))
    return facts


def _title_and_facts(pdf: FPDF, invoice: Invoice) -> None:
    _line(pdf, TITLES[invoice.kind], size=20, style="B", height=10)
    for label, value in _facts(invoice):
        pdf.set_font(FONT, "B", 10)
        pdf.cell(36, 5.5, pdf_text(label))
        pdf.set_font(FONT, "", 10)
        pdf.multi_cell(0, 5.5, pdf_text(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.ln(5)


def _bill_to(pdf: FPDF, invoice: Invoice) -> None:
    contact = invoice.bill_to
    _line(pdf, "Bill to", size=9, style="B")
    city = " ".join(part for part in (contact.postal_code, contact.city) if part)
    for part in (contact.full_name, contact.company, contact.street, city, contact.country,
                 contact.email):  # fmt: skip
        if part:
            _line(pdf, part)
    pdf.ln(6)


def _line_cells(line: InvoiceLine, currency: str) -> tuple[str, ...]:
    inclusive = " incl." if line.tax_inclusive else ""
    cells = (
        line.description,
        str(line.quantity),
        _money(line.unit_price, currency),
        _money(line.discount, currency) if line.discount else "-",
        _rate(line.tax_rate_bp) + inclusive,
        _money(line.amount, currency),
    )
    return tuple(pdf_text(cell) for cell in cells)


def _lines(pdf: FPDF, invoice: Invoice) -> None:
    pdf.set_font(FONT, "", 9)
    align = ("LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT", "RIGHT")
    with pdf.table(
        col_widths=COLUMNS,
        width=sum(COLUMNS),
        text_align=align,
        borders_layout=TableBordersLayout.HORIZONTAL_LINES,
        line_height=5.5,
        padding=1.2,
    ) as table:
        heading = table.row()
        for text in HEADINGS:
            heading.cell(text)
        for line in invoice.lines.all():
            row = table.row()
            for text in _line_cells(line, invoice.currency):
                row.cell(text)
    pdf.ln(4)


def _total_rows(invoice: Invoice) -> list[tuple[str, str, bool]]:
    """Subtotal and discount as the lines read; then net, tax per rate and total, which
    always add up (a tax-inclusive price holds its tax, so subtotal less discount is the
    net only when every price is tax-exclusive)."""
    currency = invoice.currency
    rows = [("Subtotal", _money(invoice.subtotal, currency), False)]
    if invoice.discount:
        rows.append(("Discount", _money(-invoice.discount, currency), False))
    rows.append(("Net", _money(sum(t["net"] for t in invoice.tax_breakdown), currency), False))
    for tax in invoice.tax_breakdown:
        label = f"Tax {_rate(tax['rate_bp'])} on {_money(tax['net'], currency)}"
        rows.append((label, _money(tax["tax"], currency), False))
    rows.append(("Total", _money(invoice.total, currency), True))
    return rows


def _totals(pdf: FPDF, invoice: Invoice) -> None:
    label_width, value_width = 62.0, 32.0
    for label, value, bold in _total_rows(invoice):
        pdf.set_font(FONT, "B" if bold else "", 11 if bold else 10)
        pdf.set_x(pdf.w - pdf.r_margin - label_width - value_width)
        pdf.cell(label_width, 6, pdf_text(label), align=Align.R)
        pdf.cell(
            value_width, 6, pdf_text(value), align=Align.R, new_x=XPos.LMARGIN, new_y=YPos.NEXT
        )


def _metadata(pdf: FPDF, invoice: Invoice) -> None:
    title = f"{TITLES[invoice.kind]} {invoice.number or invoice.pk}"
    # Document properties are PDF text strings (UTF-16 when needed), not drawn in the font.
    pdf.set_title(title)
    pdf.set_author(str(getattr(settings, "TESSERA_SELLER_NAME", "Tessera")))
    pdf.set_creation_date(invoice.issued_at or invoice.created_at)


def render_invoice_pdf(invoice: Invoice, *, compress: bool = True) -> bytes:
    """The invoice or credit note as a PDF: seller, title, number and dates, bill-to, the
    lines, totals with tax per rate, the invoice a credit note credits and why, and the
    status (DRAFT, VOID, PAID) as a watermark. ``compress=False`` leaves the text readable
    in the bytes (for tests). A draft or void invoice renders too, marked so."""
    pdf = _InvoicePDF(invoice)
    pdf.set_compression(compress)
    _metadata(pdf, invoice)
    pdf.add_page()
    _seller(pdf)
    _title_and_facts(pdf, invoice)
    _bill_to(pdf, invoice)
    _lines(pdf, invoice)
    _totals(pdf, invoice)
    out: Any = pdf.output()
    return bytes(out)


@dataclass(frozen=True, slots=True)
class InvoicePdf:
    """A rendered invoice and the file name it is served under: its number, or its id
    while it has none."""

    filename: str
    content: bytes


def invoice_pdf(invoice: Invoice) -> InvoicePdf:
    return InvoicePdf(f"{invoice.number or invoice.pk}.pdf", render_invoice_pdf(invoice))
