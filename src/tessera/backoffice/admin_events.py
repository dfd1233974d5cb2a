"""Admin for events: events with their items, questions and codes inline; attendees with
check-in and cancel actions; checkouts and waitlists read only (they are written by the
checkout, never by hand). Counters of places are shown, never edited: they move only
through the capacity module."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from tessera.core.errors import ProblemError
from tessera.events.cancellation import cancel_attendee
from tessera.events.checkin import check_in
from tessera.events.models import (
    Attendee,
    Checkout,
    Event,
    EventItem,
    PromoCode,
    Question,
    WaitlistEntry,
)
from tessera.events.services import available


class ItemInline(admin.TabularInline):
    model = EventItem
    extra = 0
    fields = (
        "name",
        "kind",
        "price",
        "tax_rate_bp",
        "tax_inclusive",
        "capacity",
        "sold",
        "waiting",
        "sales_start",
        "sales_end",
        "max_per_order",
        "active",
        "position",
    )
    readonly_fields = ("sold", "waiting")


class QuestionInline(admin.TabularInline):
    model = Question
    extra = 0
    fields = ("label", "type", "required", "options", "per_attendee", "position")


class PromoInline(admin.TabularInline):
    model = PromoCode
    extra = 0
    fields = (
        "code",
        "percent_off",
        "amount_off",
        "max_uses",
        "used",
        "valid_from",
        "valid_until",
        "active",
    )
    readonly_fields = ("used",)


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("name", "starts_at", "status", "capacity", "sold", "places_left")
    list_filter = ("status",)
    search_fields = ("name", "venue", "id")
    date_hierarchy = "starts_at"
    readonly_fields = ("sold", "created_at")
    inlines = [ItemInline, QuestionInline, PromoInline]

    @admin.display(description="Places left")
    def places_left(self, obj: Event) -> str:
        left = available(obj.capacity, obj.sold, 0)
        return "no limit" if left is None else str(left)


@admin.register(Attendee)
class AttendeeAdmin(admin.ModelAdmin):
    list_display = ("id", "event", "contact", "ticket", "status", "registered_at", "checked_in_at")
    list_filter = ("status", "event")
    search_fields = ("id", "contact__email", "contact__last_name", "checkout__id")
    list_select_related = ("event", "contact", "ticket")
    readonly_fields = [f.name for f in Attendee._meta.fields]
    actions = ["check_in_selected", "cancel_selected"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def _each(self, request: HttpRequest, queryset: QuerySet[Attendee], action: Any) -> None:
        done, refused = 0, []
        for attendee in queryset:
            try:
                action(attendee.pk)
                done += 1
            except ProblemError as exc:
                refused.append(f"{attendee.pk}: {exc.detail}")
        self.message_user(request, f"{done} done.", messages.SUCCESS)
        if refused:
            self.message_user(request, "; ".join(refused), messages.WARNING)

    @admin.action(description="Check in selected attendees", permissions=["change"])
    def check_in_selected(self, request: HttpRequest, queryset: QuerySet[Attendee]) -> None:
        self._each(request, queryset, check_in)

    @admin.action(
        description="Cancel selected tickets (no refund; places back)", permissions=["change"]
    )
    def cancel_selected(self, request: HttpRequest, queryset: QuerySet[Attendee]) -> None:
        self._each(request, queryset, lambda pk: cancel_attendee(pk, refund=False))


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Checkout)
class CheckoutAdmin(ReadOnly):
    list_display = ("id", "event", "buyer", "status", "payment", "total", "currency", "created_at")
    list_filter = ("status", "payment")
    search_fields = ("id", "buyer__email", "invoice__number")
    list_select_related = ("event", "buyer")
    date_hierarchy = "created_at"


@admin.register(WaitlistEntry)
class WaitlistAdmin(ReadOnly):
    list_display = ("id", "event", "item", "contact", "status", "offer_expires_at", "created_at")
    list_filter = ("status",)
    list_select_related = ("event", "item", "contact")
