"""The back office's card payment pages: payments, refunds, saved cards, Stripe customers
and Stripe events, and the payment panels shown on a contact's and a member's page (the
invoice pages are in ``admin_billing_invoices``, registered with these).

Everything here is read only (see ``admin_billing_common``). The ``request_key`` columns
(a hash of the client's API key and Idempotency-Key) are never shown: they mean nothing
to staff and are not theirs to see. Card numbers never reach us, so a saved card shows
only its brand, last four digits and expiry.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import flatten_fieldsets
from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from tessera.backoffice import admin_billing_invoices  # noqa: F401 - registers
from tessera.backoffice.admin_billing_common import (
    MoneyRecordAdmin,
    ReadOnlyInline,
    change_url,
    changelist_url,
    link,
    link_column,
    money,
    money_column,
)
from tessera.billing.models import (
    PaymentMethod,
    Refund,
    StripeCustomer,
    StripeEvent,
    Transaction,
)
from tessera.crm.models import Contact
from tessera.ledger.models import JournalEntry
from tessera.loyalty import credit
from tessera.loyalty.models import Member, WalletTransaction

# Latest payments listed on a contact's or member's page; the rest are one click away.
PANEL_ROWS = 20
REDACTED = "[redacted]"


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


class RefundInline(ReadOnlyInline):
    model = Refund
    fields = ("refund", "created_at", "amount_display", "status", "reason", "stripe_refund_id",
              "failure_reason")  # fmt: skip
    readonly_fields = fields
    ordering = ("created_at", "pk")

    amount_display = money_column("amount", "Amount", currency="transaction.currency")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Refund]:
        return super().get_queryset(request).select_related("transaction")

    @admin.display(description="Refund")
    def refund(self, obj: Refund) -> str:
        return link(obj, obj.pk)


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

    contact_link = link_column("contact", "Contact", ordering="contact__last_name")
    amount_display = money_column("amount", "Amount", ordering="amount")
    refunded_display = money_column("refunded_amount", "Refunded", ordering="refunded_amount")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Transaction]:
        return with_refund_count(super().get_queryset(request)).select_related(
            "contact", "payment_method"
        )

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

    contact_link = link_column("transaction.contact", "Contact")
    amount_display = money_column(
        "amount", "Amount", currency="transaction.currency", ordering="amount"
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Refund]:
        return super().get_queryset(request).select_related("transaction__contact")

    @admin.display(description="Transaction", ordering="transaction")
    def transaction_link(self, obj: Refund) -> str:
        return link(obj.transaction, obj.transaction_id)


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

    contact_link = link_column("contact", "Contact", ordering="contact__last_name")

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

    contact_link = link_column("contact", "Contact", ordering="contact__last_name")


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
