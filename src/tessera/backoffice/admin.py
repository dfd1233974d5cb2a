"""Admin registrations for every domain model (the back office)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

# Importing it registers the card payment pages (kept apart: this module would pass 500 lines).
from tessera.backoffice import admin_billing, admin_events  # noqa: F401 - registers
from tessera.core.apikeys import revoke_api_key
from tessera.core.errors import ProblemError
from tessera.core.models import ApiKey, IdempotencyKey
from tessera.crm import services as crm
from tessera.crm.matching import engine
from tessera.crm.matching.fs_model import weight_rows
from tessera.crm.matching.models import MatchingCriterion, MatchingModel, MatchingRule, NameVariant
from tessera.crm.matching.probabilistic import model_of
from tessera.crm.matching.services import check_definition, rules_changed
from tessera.crm.models import Account, Contact, Lead, TimelineEntry
from tessera.crm.services import ACCOUNT_FIELDS, PERSON_FIELDS
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


class ReadOnlyInline(admin.TabularInline):
    """Rows written only by services, listed under their parent: never added or deleted
    here (each subclass also makes its fields read only)."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class TimelineInline(ReadOnlyInline):
    model = TimelineEntry
    fields = ("occurred_at", "kind", "summary", "object_type", "object_id")
    readonly_fields = fields
    ordering = ("-id",)


PERSON_LIST = ("last_name", "first_name", "email", "company", "city", "created_at")


def _adopt(obj: Model, saved: Model) -> None:
    """Make the form's instance the record the service saved, as stored. An add form's
    instance carries an id of its own, and the pages after the save (and the change log)
    must name the record's."""
    obj.pk = saved.pk
    obj.refresh_from_db()
    obj._state.adding = False


class IndexedAdmin(admin.ModelAdmin):
    """Records are saved through the CRM services, so an edit here keeps the match keys,
    the E.164 phone, the timeline and ``last_activity_at`` current as any other edit does.
    Duplicate rules do not refuse a save here (the admin is the place to resolve
    duplicates); staff see the duplicates the rules find."""

    object_type = ""

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        _adopt(obj, self.save_record(obj, form, change))
        found = engine.find_matches(
            self.object_type, engine.record_values(obj), exclude_id=obj.pk
        ).matches
        if found:
            listed = ", ".join(f"{m.object} {m.id} ({m.score})" for m in found[:5])
            self.message_user(request, f"Possible duplicates: {listed}", messages.WARNING)

    def save_record(self, obj: Any, form: Any, change: bool) -> Model:
        """Create or update the record from the form's instance, through its service."""
        raise NotImplementedError

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        engine.unindex_record(self.object_type, obj.pk)
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        """The list's "delete selected" action: the records' keys go with them."""
        for pk in queryset.values_list("pk", flat=True):
            engine.unindex_record(self.object_type, pk)
        super().delete_queryset(request, queryset)


def _person(obj: Contact | Lead) -> dict[str, Any]:
    """The form's person fields, as the services take them."""
    return {**{name: getattr(obj, name) for name in PERSON_FIELDS}, "account_id": obj.account_id}


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

    def save_record(self, obj: Contact, form: Any, change: bool) -> Model:
        values = _person(obj)
        if change:
            contact = crm.update_contact(
                obj.pk, crm.ContactChanges(**values), check_duplicates=False
            ).record
        else:
            contact = crm.create_contact(crm.ContactInput(**values), check_duplicates=False).record
        if "email_opt_out" in form.changed_data:  # the person's choice, on their timeline
            crm.set_email_opt_out(contact.pk, obj.email_opt_out)
        return contact

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

    def save_record(self, obj: Lead, form: Any, change: bool) -> Model:
        values = _person(obj)
        if change:
            changes = crm.LeadChanges(**values)
            lead = crm.update_lead(obj.pk, changes, check_duplicates=False).record
        else:
            lead = crm.create_lead(crm.LeadInput(**values), check_duplicates=False).record
        # Which contact the lead became: no service sets it by hand, staff may correct it.
        converted = [f for f in ("converted_contact", "converted_at") if f in form.changed_data]
        if converted:
            lead.converted_contact, lead.converted_at = obj.converted_contact, obj.converted_at
            lead.save(update_fields=[*converted, "updated_at"])
        return lead


@admin.register(Account)
class AccountAdmin(IndexedAdmin):
    object_type = "account"
    list_display = ("name", "website", "city", "country", "created_at")
    search_fields = ("name", "website", "id")
    readonly_fields = ("id", "created_at", "updated_at")

    def save_record(self, obj: Account, form: Any, change: bool) -> Model:
        values = {name: getattr(obj, name) for name in ACCOUNT_FIELDS}
        if change:
            changes = crm.AccountChanges(**values)
            return crm.update_account(obj.pk, changes, check_duplicates=False).record
        return crm.create_account(crm.AccountInput(**values), check_duplicates=False).record


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


class PostingInline(ReadOnlyInline):
    model = Posting
    fields = ("account", "amount")
    readonly_fields = fields


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
