"""Invoices and credit notes, read only: the JSON record and the PDF.

Refunds against an invoice (``POST /invoices/{id}/refunds``) belong to the events router,
which builds them on ``billing.credit_notes.issue_credit_note``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from django.http import HttpRequest, HttpResponse
from ninja import Router, Schema

from tessera.api.auth import read_auth
from tessera.api.schemas import ERRORS
from tessera.billing import invoices
from tessera.billing.models import Invoice

router = Router(tags=["Invoices"])


class TaxOut(Schema):
    rate_bp: int
    net: int
    tax: int


class InvoiceLineOut(Schema):
    id: str
    item_id: str
    attendee_id: str
    description: str
    quantity: int
    unit_price: int
    discount: int
    tax_rate_bp: int
    tax_inclusive: bool
    net: int
    tax: int
    amount: int


class CreditNoteOut(Schema):
    id: str
    number: str | None
    total: int
    issued_at: datetime | None
    reason: str


class InvoiceOut(Schema):
    id: str
    kind: Literal["invoice", "credit_note"]
    number: str | None
    status: Literal["draft", "open", "paid", "void"]
    currency: str
    bill_to_contact_id: str
    subtotal: int
    discount: int
    tax: int
    total: int
    taxes: list[TaxOut]
    issued_at: datetime | None
    credits_invoice_id: str | None
    reason: str
    lines: list[InvoiceLineOut]
    credit_notes: list[CreditNoteOut]

    @staticmethod
    def resolve_bill_to_contact_id(obj: Invoice) -> str:
        return obj.bill_to_id

    @staticmethod
    def resolve_taxes(obj: Invoice) -> list[dict[str, Any]]:
        return list(obj.tax_breakdown)

    @staticmethod
    def resolve_credits_invoice_id(obj: Invoice) -> str | None:
        return obj.credits_id

    @staticmethod
    def resolve_lines(obj: Invoice) -> list[object]:
        return list(obj.lines.all())

    @staticmethod
    def resolve_credit_notes(obj: Invoice) -> list[object]:
        return list(obj.credit_notes.all())


PDF_OPENAPI = {
    "responses": {
        "200": {
            "description": "The invoice or credit note as a PDF (a draft or void one is marked)",
            "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
        }
    }
}


# Declared before `/invoices/{invoice_id}` so that Django's resolver, which tries routes in
# order, gives `….pdf` to this one (an id never holds a dot, so the JSON route would only
# answer 404 for it).
@router.get(
    "/invoices/{invoice_id}.pdf",
    response=ERRORS,
    auth=read_auth,
    openapi_extra=PDF_OPENAPI,
    url_name="invoice_pdf",
)
def get_invoice_pdf(request: HttpRequest, invoice_id: str) -> HttpResponse:
    """The printable invoice: `Content-Disposition: inline` with the invoice number as the
    file name."""
    pdf = invoices.get_invoice_pdf(invoice_id)
    response = HttpResponse(pdf.content, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{pdf.filename}"'
    return response


@router.get(
    "/invoices/{invoice_id}",
    response={200: InvoiceOut, **ERRORS},
    auth=read_auth,
    url_name="invoice",
)
def get_invoice(request: HttpRequest, invoice_id: str) -> Invoice:
    """An invoice or credit note with its lines, tax per rate (`taxes`) and, for an
    invoice, its `credit_notes`. An issued invoice never changes: refunds and cancellations
    add credit notes."""
    return invoices.get_invoice(invoice_id)
