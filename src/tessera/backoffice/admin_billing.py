"""The back office's card payment pages: payments, refunds, saved cards, Stripe customers
and Stripe events, and the payment panels shown on a contact's and a member's page.

Everything here is read only. These rows are written by the billing services, the webhook
and the reconciler, and they are the record of real money: a wrong payment is refunded,
never edited or deleted (deleting one would also orphan its ledger postings). The
``request_key`` columns (a hash of the client's API key and Idempotency-Key) are never
shown: they mean nothing to staff and are not theirs to see. Card numbers never reach us,
so a saved card shows only its brand, last four digits and expiry.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets, quote, unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Count, IntegerField, Model, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from tessera.billing.invoice_pdf import render_invoice_pdf
from tessera.billing.models import (
    Invoice,
    InvoiceLine,
    PaymentMethod,
    Refund,
    StripeCustomer,
    StripeEvent,
    Transaction,
)
from tessera.core.money import Money
from tessera.crm.models import Contact
from tessera.ledger.models import JournalEntry
from tessera.loyalty import credit
from tessera.loyalty.models import Member, WalletTransaction

# Latest payments listed on a contact's or member's page; the rest are one click away.
PANEL_ROWS = 20
REDACTED = "[redacted]"


def money(amount: int, currency: str) -> str:
    try:
        return Money(amount, currency).format(settings.TESSERA_LOCALE)
    except (TypeError, ValueError):
        # A code Babel does not know must not break the page that shows the record.
        return f"{amount} {currency}"


def change_url(obj: Model) -> str:
    # quote() as the admin's own links do: ids contain "_", its escape character.
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[quote(obj.pk)])


def changelist_url(model: type[Model], **params: str) -> str:
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    return f"{url}?{urlencode(params)}" if params else url


def link(obj: Model | None, text: object = None) -> str:
    if obj is None:
        return "-"
    return format_html('<a href="{}">{}</a>', change_url(obj), obj if text is None else text)


def with_refund_count(qs: QuerySet[Transaction]) -> QuerySet[Transaction]:
    """Adds ``refund_count``; a subquery rather than a join so the rows need no GROUP BY
    over every selected (and select_related) column."""
    refunds = (
        Refund.objects.filter(transaction=OuterRef("pk"))
        .order_by()
        .values("transaction")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return qs.annotate(refund_count=Coalesce(Subquery(refunds, output_field=IntegerField()), 0))


# --- the panels on the contact's and the member's pages ------------------------------------


def _payments_panel(qs: QuerySet[Transaction], all_url: str) -> SafeString:
    latest = list(with_refund_count(qs).order_by("-created_at", "-pk")[: PANEL_ROWS + 1])
    rows = [
        {
            "url": change_url(txn),
            "id": txn.pk,
            "created_at": txn.created_at,
            "amount": money(txn.amount, txn.currency),
            "status": txn.get_status_display(),
            "purpose": txn.purpose,
            "refund_count": txn.refund_count,  # type: ignore[attr-defined]
            "refunded": money(txn.refunded_amount, txn.currency),
            "disputed": txn.disputed,
        }
        for txn in latest[:PANEL_ROWS]
    ]
    context = {"rows": rows, "more": len(latest) > PANEL_ROWS, "all_url": all_url}
    return render_to_string("backoffice/admin/card_payments.html", context)


def contact_payments(contact: Contact) -> SafeString:
    return _payments_panel(
        Transaction.objects.filter(contact=contact), changelist_url(Transaction, contact=contact.pk)
    )


def member_payments(member: Member) -> SafeString:
    """The wallet top-ups this member paid for (the contact's other payments are on the
    contact's page)."""
    where = {"purpose": credit.PURPOSE, "purpose_id": member.pk}
    qs = Transaction.objects.filter(**where)
    return _payments_panel(qs, changelist_url(Transaction, **where))


def saved_cards(contact: Contact) -> SafeString:
    cards = PaymentMethod.objects.filter(contact=contact).order_by("-created_at", "-pk")
    rows = [
        {"url": change_url(pm), "card": str(pm), "expiry": _expiry(pm), "created_at": pm.created_at}
        for pm in cards[:PANEL_ROWS]
    ]
    context = {"rows": rows, "all_url": changelist_url(PaymentMethod, contact=contact.pk)}
    return render_to_string("backoffice/admin/saved_cards.html", context)


def _expiry(pm: PaymentMethod) -> str:
    if pm.exp_month is None or pm.exp_year is None:
        return "-"
    return f"{pm.exp_month:02d}/{pm.exp_year}"


# --- the billing models' own pages ----------------------------------------------------------


class MoneyRecordAdmin(admin.ModelAdmin):
    """Like ``ReadOnlyAdmin`` in admin.py, and never deleted either: without the delete
    permission Django refuses the delete view (403) and drops "delete selected"."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class RefundInline(admin.TabularInline):
    model = Refund
    fields = ("refund", "created_at", "amount_display", "status", "reason", "stripe_refund_id",
              "failure_reason")  # fmt: skip
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("created_at", "pk")

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Refund]:
        return super().get_queryset(request).select_related("transaction")

    @admin.display(description="Refund")
    def refund(self, obj: Refund) -> str:
        return link(obj, obj.pk)

    @admin.display(description="Amount")
    def amount_display(self, obj: Refund) -> str:
        return money(obj.amount, obj.transaction.currency)


@admin.register(Transaction)
class TransactionAdmin(MoneyRecordAdmin):
    list_display = ("id", "created_at", "contact_link", "amount_display", "status", "purpose",
                    "refund_count", "refunded_display", "disputed", "payment_method")  # fmt: skip
    list_filter = ("status", "purpose", "currency", "disputed", "created_at")
    search_fields = ("id", "stripe_payment_intent_id", "purpose_id", "contact__id",
                     "contact__email", "contact__first_name", "contact__last_name")  # fmt: skip
    date_hierarchy = "created_at"
    list_select_related = ("contact", "payment_method")
    ordering = ("-created_at", "-pk")
    # Listed field by field, so that request_key can never appear by default.
    fieldsets = (
        (None, {"fields": ("id", "status", "amount_display", "refunded_display",
                           "capture_method", "disputed")}),
        ("Paid by", {"fields": ("contact", "payment_method")}),
        ("Paid for", {"fields": ("purpose", "purpose_id", "paid_for", "ledger_entries")}),
        ("Stripe", {"fields": ("stripe_payment_intent_id", "failure_code", "failure_message")}),
        ("Dates", {"fields": ("created_at", "updated_at", "settled_at")}),
    )  # fmt: skip
    readonly_fields = flatten_fieldsets(fieldsets)
    inlines = [RefundInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Transaction]:
        return with_refund_count(super().get_queryset(request)).select_related(
            "contact", "payment_method"
        )

    @admin.display(description="Contact", ordering="contact__last_name")
    def contact_link(self, obj: Transaction) -> str:
        return link(obj.contact)

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj: Transaction) -> str:
        return money(obj.amount, obj.currency)

    @admin.display(description="Refunded", ordering="refunded_amount")
    def refunded_display(self, obj: Transaction) -> str:
        return money(obj.refunded_amount, obj.currency)

    @admin.display(description="Refunds", ordering="refund_count")
    def refund_count(self, obj: Transaction) -> int:
        return int(getattr(obj, "refund_count", 0))

    @admin.display(description="Paid for")
    def paid_for(self, obj: Transaction) -> str:
        resolve = PAID_FOR.get(obj.purpose)
        targets = resolve(obj) if resolve else []
        if not targets:
            return "-"
        return format_html_join(", ", '{}: <a href="{}">{}</a>', targets)

    @admin.display(description="Ledger")
    def ledger_entries(self, obj: Transaction) -> str:
        url = changelist_url(JournalEntry, object_type="transaction", object_id=obj.pk)
        return format_html('<a href="{}">Journal entries of this payment</a>', url)


def _wallet_topup(txn: Transaction) -> list[tuple[str, str, str]]:
    """A top-up's member (``purpose_id``) and, once settled, the wallet credit it bought
    (``loyalty.credit.settle_topup`` posts it under ``topup:<transaction id>``)."""
    targets = []
    member = Member.objects.select_related("contact", "program").filter(pk=txn.purpose_id).first()
    if member is not None:
        targets.append(("Member", change_url(member), str(member)))
    wtx = WalletTransaction.objects.filter(journal_entry__reference=f"topup:{txn.pk}").first()
    if wtx is not None:
        targets.append(("Wallet transaction", change_url(wtx), f"{wtx.pk} ({wtx})"))
    return targets


# Where each purpose's ``purpose_id`` points (see billing.settlement: one per owning app).
PAID_FOR = {credit.PURPOSE: _wallet_topup}


@admin.register(Refund)
class RefundAdmin(MoneyRecordAdmin):
    list_display = ("id", "created_at", "transaction_link", "contact_link", "amount_display",
                    "status", "reason")  # fmt: skip
    list_filter = ("status", "transaction__currency", "created_at")
    search_fields = ("id", "stripe_refund_id", "transaction__id",
                     "transaction__stripe_payment_intent_id", "transaction__contact__email",
                     "transaction__contact__last_name")  # fmt: skip
    date_hierarchy = "created_at"
    list_select_related = ("transaction__contact",)
    ordering = ("-created_at", "-pk")
    fields = ("id", "transaction", "contact_link", "amount_display", "status", "reason",
              "stripe_refund_id", "failure_reason", "created_at", "updated_at")  # fmt: skip
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Refund]:
        return super().get_queryset(request).select_related("transaction__contact")

    @admin.display(description="Transaction", ordering="transaction")
    def transaction_link(self, obj: Refund) -> str:
        return link(obj.transaction, obj.transaction_id)

    @admin.display(description="Contact")
    def contact_link(self, obj: Refund) -> str:
        return link(obj.transaction.contact)

    @admin.display(description="Amount", ordering="amount")
    def amount_display(self, obj: Refund) -> str:
        return money(obj.amount, obj.transaction.currency)


@admin.register(PaymentMethod)
class PaymentMethodAdmin(MoneyRecordAdmin):
    list_display = ("id", "contact_link", "brand", "last4", "expiry", "holder_name",
                    "created_at")  # fmt: skip
    list_filter = ("brand", "created_at")
    search_fields = ("id", "stripe_id", "last4", "holder_name", "contact__email",
                     "contact__first_name", "contact__last_name")  # fmt: skip
    date_hierarchy = "created_at"
    list_select_related = ("contact",)
    ordering = ("-created_at", "-pk")
    fields = ("id", "contact", "stripe_id", "brand", "last4", "expiry", "holder_name",
              "billing_line1", "billing_city", "billing_postal_code", "billing_country",
              "created_at", "payments")  # fmt: skip
    readonly_fields = fields

    @admin.display(description="Contact", ordering="contact__last_name")
    def contact_link(self, obj: PaymentMethod) -> str:
        return link(obj.contact)

    @admin.display(description="Expiry")
    def expiry(self, obj: PaymentMethod) -> str:
        return _expiry(obj)

    @admin.display(description="Payments")
    def payments(self, obj: PaymentMethod) -> str:
        url = changelist_url(Transaction, payment_method=obj.pk)
        return format_html('<a href="{}">Payments with this card</a>', url)


@admin.register(StripeCustomer)
class StripeCustomerAdmin(MoneyRecordAdmin):
    list_display = ("stripe_id", "contact_link", "created_at")
    search_fields = ("stripe_id", "contact__email", "contact__last_name")
    list_select_related = ("contact",)
    fields = ("stripe_id", "contact", "created_at")
    readonly_fields = fields

    @admin.display(description="Contact", ordering="contact__last_name")
    def contact_link(self, obj: StripeCustomer) -> str:
        return link(obj.contact)


@admin.register(StripeEvent)
class StripeEventAdmin(MoneyRecordAdmin):
    list_display = ("id", "type", "received_at", "processed_at")
    list_filter = ("type", ("processed_at", admin.EmptyFieldListFilter), "received_at")
    search_fields = ("id", "type")
    date_hierarchy = "received_at"
    ordering = ("-received_at", "-pk")
    fields = ("id", "type", "received_at", "processed_at", "transaction", "payload_display")
    readonly_fields = fields

    @admin.display(description="Transaction")
    def transaction(self, obj: StripeEvent) -> str:
        return link(event_transaction(obj.payload))

    @admin.display(description="Payload")
    def payload_display(self, obj: StripeEvent) -> str:
        text = json.dumps(redact(obj.payload), indent=2, sort_keys=True, ensure_ascii=False)
        return format_html('<pre style="white-space: pre-wrap">{}</pre>', text)


def event_transaction(payload: Any) -> Transaction | None:
    """The payment an event is about: by its PaymentIntent id (the object itself, or the
    charge's, refund's or dispute's), else by the metadata we sent with it."""
    data = payload.get("data") if isinstance(payload, dict) else None
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        return None
    pi_id = obj.get("id") if obj.get("object") == "payment_intent" else obj.get("payment_intent")
    if isinstance(pi_id, str) and pi_id:
        found = Transaction.objects.filter(stripe_payment_intent_id=pi_id).first()
        if found is not None:
            return found
    txn_id = (obj.get("metadata") or {}).get("tessera_transaction")
    return Transaction.objects.filter(pk=txn_id).first() if isinstance(txn_id, str) else None


def redact(value: Any) -> Any:
    """The payload without its secrets: a PaymentIntent's ``client_secret`` lets whoever
    holds it confirm the payment, so staff pages never show one."""
    if isinstance(value, dict):
        return {k: REDACTED if "secret" in str(k).lower() else redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


# --- invoices and credit notes --------------------------------------------------------------
#
# Read only like the payments: an issued invoice never changes (it is credited instead), and
# the billing services are its only writers. Staff read the lines, the credit notes and the
# PDF the customer gets.


class _ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class InvoiceLineInline(_ReadOnlyInline):
    model = InvoiceLine
    fk_name = "invoice"
    fields = ("description", "item_id", "attendee_id", "quantity", "unit_price_display",
              "discount_display", "tax_rate", "net_display", "tax_display",
              "amount_display")  # fmt: skip
    readonly_fields = fields
    ordering = ("position", "pk")

    def get_queryset(self, request: HttpRequest) -> QuerySet[InvoiceLine]:
        return super().get_queryset(request).select_related("invoice")

    @admin.display(description="Unit price")
    def unit_price_display(self, obj: InvoiceLine) -> str:
        return money(obj.unit_price, obj.invoice.currency)

    @admin.display(description="Discount")
    def discount_display(self, obj: InvoiceLine) -> str:
        return money(obj.discount, obj.invoice.currency)

    @admin.display(description="Tax rate")
    def tax_rate(self, obj: InvoiceLine) -> str:
        return tax_rate_label(obj.tax_rate_bp) + (" incl." if obj.tax_inclusive else "")

    @admin.display(description="Net")
    def net_display(self, obj: InvoiceLine) -> str:
        return money(obj.net, obj.invoice.currency)

    @admin.display(description="Tax")
    def tax_display(self, obj: InvoiceLine) -> str:
        return money(obj.tax, obj.invoice.currency)

    @admin.display(description="Amount")
    def amount_display(self, obj: InvoiceLine) -> str:
        return money(obj.amount, obj.invoice.currency)


class CreditNoteInline(_ReadOnlyInline):
    model = Invoice
    fk_name = "credits"
    verbose_name = "credit note"
    verbose_name_plural = "credit notes"
    fields = ("credit_note", "issued_at", "total_display", "status", "reason")
    readonly_fields = fields
    ordering = ("issued_at", "pk")

    @admin.display(description="Credit note")
    def credit_note(self, obj: Invoice) -> str:
        return link(obj, obj.number or obj.pk)

    @admin.display(description="Total")
    def total_display(self, obj: Invoice) -> str:
        return money(obj.total, obj.currency)


def tax_rate_label(rate_bp: int) -> str:
    whole, rest = divmod(rate_bp, 100)
    return f"{whole}%" if not rest else f"{whole}.{rest:02d}".rstrip("0") + "%"


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
        response = HttpResponse(render_invoice_pdf(invoice), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{invoice.number or invoice.pk}.pdf"'
        return response

    @admin.display(description="PDF")
    def pdf(self, obj: Invoice) -> str:
        url = reverse("admin:billing_invoice_pdf", args=[quote(obj.pk)])
        return format_html('<a href="{}">Open the PDF</a>', url)

    @admin.display(description="Bill to", ordering="bill_to__last_name")
    def bill_to_link(self, obj: Invoice) -> str:
        return link(obj.bill_to)

    @admin.display(description="Subtotal", ordering="subtotal")
    def subtotal_display(self, obj: Invoice) -> str:
        return money(obj.subtotal, obj.currency)

    @admin.display(description="Discount", ordering="discount")
    def discount_display(self, obj: Invoice) -> str:
        return money(obj.discount, obj.currency)

    @admin.display(description="Total", ordering="total")
    def total_display(self, obj: Invoice) -> str:
        return money(obj.total, obj.currency)

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
