"""The back office's invoice and credit-note pages.

Read only like the payments: an issued invoice never changes (it is credited instead), and
the billing services are its only writers. Staff read the lines, the credit notes and the
PDF the customer gets.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets, quote, unquote
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from tessera.backoffice.admin_billing_common import (
    Column,
    MoneyRecordAdmin,
    ReadOnlyInline,
    link,
    link_column,
    money,
    money_column,
)
from tessera.billing.invoice_pdf import invoice_pdf
from tessera.billing.models import Invoice, InvoiceLine


def tax_rate_label(rate_bp: int) -> str:
    whole, rest = divmod(rate_bp, 100)
    return f"{whole}%" if not rest else f"{whole}.{rest:02d}".rstrip("0") + "%"


def _line_money(field: str, description: str) -> Column:
    return money_column(field, description, currency="invoice.currency")


class InvoiceLineInline(ReadOnlyInline):
    model = InvoiceLine
    fk_name = "invoice"
    fields = ("description", "item_id", "attendee_id", "quantity", "unit_price_display",
              "discount_display", "tax_rate", "net_display", "tax_display",
              "amount_display")  # fmt: skip
    readonly_fields = fields
    ordering = ("position", "pk")

    unit_price_display = _line_money("unit_price", "Unit price")
    discount_display = _line_money("discount", "Discount")
    net_display = _line_money("net", "Net")
    tax_display = _line_money("tax", "Tax")
    amount_display = _line_money("amount", "Amount")

    def get_queryset(self, request: HttpRequest) -> QuerySet[InvoiceLine]:
        return super().get_queryset(request).select_related("invoice")

    @admin.display(description="Tax rate")
    def tax_rate(self, obj: InvoiceLine) -> str:
        return tax_rate_label(obj.tax_rate_bp) + (" incl." if obj.tax_inclusive else "")


class CreditNoteInline(ReadOnlyInline):
    model = Invoice
    fk_name = "credits"
    verbose_name = "credit note"
    verbose_name_plural = "credit notes"
    fields = ("credit_note", "issued_at", "total_display", "status", "reason")
    readonly_fields = fields
    ordering = ("issued_at", "pk")

    total_display = money_column("total", "Total")

    @admin.display(description="Credit note")
    def credit_note(self, obj: Invoice) -> str:
        return link(obj, obj.number or obj.pk)


@admin.register(Invoice)
class InvoiceAdmin(MoneyRecordAdmin):
    list_display = ("__str__", "kind", "status", "bill_to_link", "total_display", "issued_at",
                    "reference")  # fmt: skip
    list_filter = ("kind", "status", "currency", "issued_at")
    search_fields = ("id", "number", "reference", "bill_to__id", "bill_to__email",
                     "bill_to__last_name")  # fmt: skip
    date_hierarchy = "created_at"
    list_select_related = ("bill_to",)
    ordering = ("-created_at", "-pk")
    fieldsets = (
        (None, {"fields": ("id", "kind", "number", "status", "pdf", "reference")}),
        ("Billed to", {"fields": ("bill_to",)}),
        ("Amounts", {"fields": ("subtotal_display", "discount_display", "taxes",
                                "total_display")}),
        ("Credit note", {"fields": ("credits", "reason")}),
        ("Dates", {"fields": ("created_at", "issued_at")}),
    )  # fmt: skip
    readonly_fields = flatten_fieldsets(fieldsets)
    inlines = [InvoiceLineInline, CreditNoteInline]

    bill_to_link = link_column("bill_to", "Bill to", ordering="bill_to__last_name")
    subtotal_display = money_column("subtotal", "Subtotal", ordering="subtotal")
    discount_display = money_column("discount", "Discount", ordering="discount")
    total_display = money_column("total", "Total", ordering="total")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Invoice]:
        return super().get_queryset(request).select_related("bill_to", "credits")

    def get_urls(self) -> list[URLPattern]:
        pdf = path(
            "<path:object_id>/pdf/",
            self.admin_site.admin_view(self.pdf_view),
            name="billing_invoice_pdf",
        )
        return [pdf, *super().get_urls()]

    def pdf_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The PDF the customer gets, for staff who may view invoices."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        invoice = self.get_object(request, unquote(object_id))
        if invoice is None:
            raise Http404(f"No invoice {unquote(object_id)}")
        pdf = invoice_pdf(invoice)
        response = HttpResponse(pdf.content, content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{pdf.filename}"'
        return response

    @admin.display(description="PDF")
    def pdf(self, obj: Invoice) -> str:
        url = reverse("admin:billing_invoice_pdf", args=[quote(obj.pk)])
        return format_html('<a href="{}">Open the PDF</a>', url)

    @admin.display(description="Tax per rate")
    def taxes(self, obj: Invoice) -> str:
        if not obj.tax_breakdown:
            return "-"
        rows = [
            (tax_rate_label(t["rate_bp"]), money(t["net"], obj.currency),
             money(t["tax"], obj.currency))
            for t in obj.tax_breakdown
        ]  # fmt: skip
        return format_html_join("\n", "<div>{} on {}: {}</div>", rows)
