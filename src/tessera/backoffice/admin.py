"""Admin registrations for every domain model (the back office)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

# Importing it registers the card payment pages (kept apart: this module would pass 500 lines).
from tessera.backoffice import admin_billing, admin_events  # noqa: F401 - registers
from tessera.core.apikeys import revoke_api_key
from tessera.core.errors import ProblemError
from tessera.core.models import ApiKey, IdempotencyKey
from tessera.crm.matching import engine
from tessera.crm.matching.fs_model import weight_rows
from tessera.crm.matching.models import MatchingCriterion, MatchingModel, MatchingRule, NameVariant
from tessera.crm.matching.probabilistic import model_of
from tessera.crm.matching.services import check_definition, rules_changed
from tessera.crm.matching.values import record_phone_e164
from tessera.crm.models import Account, Contact, Lead, TimelineEntry
from tessera.ledger.models import JournalEntry, LedgerAccount, Posting
from tessera.loyalty.models import (
    Activity,
    Completion,
    Member,
    Order,
    OrderLine,
    Product,
    Program,
    WalletTransaction,
)
from tessera.notifications.models import OutboundEmail
from tessera.notifications.services import retry_now

admin.site.site_header = "Tessera administration"
admin.site.site_title = "Tessera"


class ReadOnlyAdmin(admin.ModelAdmin):
    """For records written only by services: visible, never edited by hand. (Money records
    are not deletable either: see ``admin_billing.MoneyRecordAdmin``.)"""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(ApiKey)
class ApiKeyAdmin(ReadOnlyAdmin):
    list_display = ("name", "prefix", "scopes", "created_at", "last_used_at", "revoked_at")
    search_fields = ("name", "prefix")
    actions = ["revoke"]

    # Django offers an action with no permissions to whoever may see the list; revoking is a
    # change, though the form itself is read only (has_change_permission is False for all).
    @admin.action(description="Revoke selected keys", permissions=["revoke"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        for key in queryset:
            revoke_api_key(key)
        self.message_user(request, f"{queryset.count()} key(s) revoked.", messages.SUCCESS)

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("core.change_apikey")


@admin.register(IdempotencyKey)
class IdempotencyKeyAdmin(ReadOnlyAdmin):
    list_display = ("key", "api_key", "method", "path", "status", "response_status", "created_at")
    list_filter = ("status",)
    search_fields = ("key", "path")
    exclude = ("response_body",)


class TimelineInline(admin.TabularInline):
    model = TimelineEntry
    fields = ("occurred_at", "kind", "summary", "object_type", "object_id")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-id",)

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


PERSON_LIST = ("last_name", "first_name", "email", "company", "city", "created_at")


class IndexedAdmin(admin.ModelAdmin):
    """Records edited here keep their match keys current, and staff see the duplicates the
    rules find (staff may still save: the admin is the place to resolve them)."""

    object_type = ""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        obj.phone_e164 = record_phone_e164(obj.phone, obj.country)  # as the services store it
        super().save_model(request, obj, form, change)
        engine.index_record(self.object_type, obj)
        found = engine.find_matches(
            self.object_type, engine.record_values(obj), exclude_id=obj.pk
        ).matches
        if found:
            listed = ", ".join(f"{m.object} {m.id} ({m.score})" for m in found[:5])
            self.message_user(request, f"Possible duplicates: {listed}", messages.WARNING)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        engine.unindex_record(self.object_type, obj.pk)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        """The list's "delete selected" action: the records' keys go with them."""
        for pk in queryset.values_list("pk", flat=True):
            engine.unindex_record(self.object_type, pk)
        super().delete_queryset(request, queryset)


@admin.register(Contact)
class ContactAdmin(IndexedAdmin):
    object_type = "contact"
    list_display = PERSON_LIST
    search_fields = ("last_name", "first_name", "email", "company", "id")
    list_filter = ("country",)
    raw_id_fields = ("account",)
    readonly_fields = ("id", "created_at", "updated_at", "last_activity_at", "card_payments",
                       "saved_cards")  # fmt: skip
    inlines = [TimelineInline]

    @admin.display(description="Card payments")
    def card_payments(self, obj: Contact) -> SafeString | str:
        # The add form's unsaved contact already has its id: ask whether it was saved.
        return "-" if obj._state.adding else admin_billing.contact_payments(obj)

    @admin.display(description="Saved cards")
    def saved_cards(self, obj: Contact) -> SafeString | str:
        return "-" if obj._state.adding else admin_billing.saved_cards(obj)


@admin.register(Lead)
class LeadAdmin(IndexedAdmin):
    object_type = "lead"
    list_display = PERSON_LIST
    search_fields = ("last_name", "first_name", "email", "company", "id")
    raw_id_fields = ("account",)
    readonly_fields = ("id", "created_at", "updated_at", "last_activity_at")


@admin.register(Account)
class AccountAdmin(IndexedAdmin):
    object_type = "account"
    list_display = ("name", "website", "city", "country", "created_at")
    search_fields = ("name", "website", "id")
    readonly_fields = ("id", "created_at", "updated_at")


@admin.register(OutboundEmail)
class OutboundEmailAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "to", "subject", "template", "status", "attempts", "sent_at")
    list_filter = ("status", "template")
    search_fields = ("to", "subject", "id")
    actions = ["retry"]

    @admin.action(description="Retry sending now", permissions=["retry"])
    def retry(self, request: HttpRequest, queryset: QuerySet[OutboundEmail]) -> None:
        n = 0
        for email in queryset.exclude(status=OutboundEmail.Status.SENT):
            retry_now(email)
            n += 1
        self.message_user(request, f"{n} email(s) queued again.", messages.SUCCESS)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("notifications.change_outboundemail")


class CriterionFormSet(BaseInlineFormSet):
    """Checks the rule's logic against its criteria, as the API does."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return  # each criterion's own errors are shown first
        rule = self.instance
        criteria = [
            form.cleaned_data
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE")
        ]
        try:
            check_definition(rule.object, rule.logic, criteria)
        except ProblemError as exc:
            raise ValidationError(exc.detail) from exc


class CriterionInline(admin.TabularInline):
    model = MatchingCriterion
    formset = CriterionFormSet
    extra = 0
    fields = ("number", "field", "method", "threshold", "match_blank")


@admin.register(MatchingRule)
class MatchingRuleAdmin(admin.ModelAdmin):
    list_display = ("name", "object", "mode", "action", "active", "is_standard", "updated_at")
    list_filter = ("object", "mode", "active", "action")
    readonly_fields = ("id", "is_standard", "created_at", "updated_at")
    inlines = [CriterionInline]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return not (obj is not None and obj.is_standard)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        rules_changed(form.instance.object)


@admin.register(MatchingModel)
class MatchingModelAdmin(ReadOnlyAdmin):
    """The trained probabilistic models, with every weight: why two records match."""

    list_display = ("object", "records", "pairs", "seconds", "trained_at")
    fields = ("object", "records", "pairs", "seconds", "trained_at", "weights")
    readonly_fields = fields

    @admin.display(description="Weights per field and comparison level")
    def weights(self, obj: MatchingModel) -> SafeString:
        rows = [
            (name, label, f"{m:.4f}", f"{u:.6f}", f"{w:+.2f}")
            for name, label, m, u, w in weight_rows(model_of(obj.object, obj.model))
        ]
        body = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows
        )
        head = "<tr><th>field</th><th>level</th><th>m</th><th>u</th><th>weight log2(m/u)</th></tr>"
        return format_html("<table>{}{}</table>", mark_safe(head), body)  # noqa: S308 - constant


@admin.register(NameVariant)
class NameVariantAdmin(admin.ModelAdmin):
    list_display = ("name", "variant", "created_at")
    search_fields = ("name", "variant")

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        obj.name, obj.variant = obj.name.strip().lower(), obj.variant.strip().lower()
        super().save_model(request, obj, form, change)
        for object_type in ("contact", "lead"):
            rules_changed(object_type)


class PostingInline(admin.TabularInline):
    model = Posting
    fields = ("account", "amount")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(LedgerAccount)
class LedgerAccountAdmin(ReadOnlyAdmin):
    list_display = ("code", "name", "asset", "balance", "allow_negative", "created_at")
    search_fields = ("code", "name")
    list_filter = ("asset",)


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "reference", "memo", "object_type", "object_id")
    search_fields = ("reference", "object_id")
    list_filter = ("kind",)
    inlines = [PostingInline]

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # entries are immutable: correct with a new entry


@admin.register(Program)
class ProgramAdmin(admin.ModelAdmin):
    list_display = ("name", "currency", "points_per_unit", "low_balance_threshold", "created_at")
    readonly_fields = ("id", "issuance_account", "redemption_account", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # programs need their ledger accounts: create them through the API


@admin.register(Member)
class MemberAdmin(ReadOnlyAdmin):
    list_display = ("id", "contact", "program", "created_at")
    search_fields = ("id", "contact__email", "contact__last_name")
    list_select_related = ("contact", "program")
    readonly_fields = ("card_payments", "saved_cards")

    @admin.display(description="Card payments (wallet top-ups)")
    def card_payments(self, obj: Member) -> SafeString:
        return admin_billing.member_payments(obj)

    @admin.display(description="Saved cards")
    def saved_cards(self, obj: Member) -> SafeString:
        return admin_billing.saved_cards(obj.contact)


@admin.register(WalletTransaction)
class WalletTransactionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "member", "type", "points", "balance_after", "reference")
    list_filter = ("type",)
    search_fields = ("member__id", "reference")


@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin):
    list_display = ("title", "kind", "points", "program", "active", "starts_at", "ends_at")
    list_filter = ("kind", "active")


@admin.register(Completion)
class CompletionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "member", "activity", "correct", "points_awarded")


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("name", "program", "price_points", "stock", "active")
    list_filter = ("active",)


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    fields = ("product", "quantity", "unit_points")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = ("id", "member", "status", "total_points", "created_at", "refunded_at")
    list_filter = ("status",)
    inlines = [OrderLineInline]
