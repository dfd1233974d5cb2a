"""Setting events up (the organiser's side) and reading them back."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from functools import cache
from zoneinfo import available_timezones

from django.db import transaction
from django.db.models import F, QuerySet

from tessera.core.errors import Conflict, ValidationFailed
from tessera.core.lookup import get_by_id
from tessera.core.money import POINTS, validate_currency
from tessera.core.spreadsheet import safe_cell
from tessera.core.unset import UNSET, Unset
from tessera.events.lock_objects import lock_event
from tessera.events.models import Attendee, Checkout, Event, EventItem, PromoCode, Question
from tessera.loyalty.models import Program


@dataclass(frozen=True)
class EventSpec:
    name: str
    starts_at: datetime
    ends_at: datetime
    timezone: str
    currency: str
    capacity: int | None = None
    venue: str = ""
    description: str = ""
    status: str = Event.Status.LIVE
    program_id: str | None = None
    attendance_points: int | None = None
    waitlist_offer_hours: int = 48


@dataclass(frozen=True)
class ItemSpec:
    name: str
    kind: str
    price: int
    capacity: int | None = None
    sales_start: datetime | None = None
    sales_end: datetime | None = None
    max_per_order: int | None = None
    tax_rate_bp: int = 0
    tax_inclusive: bool = True
    description: str = ""
    active: bool = True


@dataclass(frozen=True)
class QuestionSpec:
    label: str
    type: str
    required: bool = False
    options: Sequence[str] = ()
    item_ids: Sequence[str] = ()
    per_attendee: bool = True


@dataclass(frozen=True)
class PromoSpec:
    code: str
    percent_off: int | None = None
    amount_off: int | None = None
    max_uses: int | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    item_ids: Sequence[str] = ()


@dataclass(frozen=True)
class EventChanges:
    """An organiser's change to an event; a field left ``UNSET`` stays as it was. None
    clears what an event may be without (its limit, venue or description) and leaves what
    it cannot be without (name, times, status, points) as it was."""

    name: str | Unset | None = UNSET
    description: str | Unset | None = UNSET
    starts_at: datetime | Unset | None = UNSET
    ends_at: datetime | Unset | None = UNSET
    timezone: str | Unset | None = UNSET
    venue: str | Unset | None = UNSET
    capacity: int | Unset | None = UNSET
    status: str | Unset | None = UNSET
    attendance_points: int | Unset | None = UNSET


_CLEARED_TO_BLANK = ("description", "venue")
_CLEARED_TO_NONE = ("capacity",)


def _new_values(changes: EventChanges) -> dict[str, object]:
    """The event's attributes the change sets, by name: a null clears a field that may be
    blank or unlimited, and is no change for the others."""
    values: dict[str, object] = {}
    for f in fields(changes):
        value = getattr(changes, f.name)
        if value is UNSET:
            continue
        if value is None and f.name in _CLEARED_TO_BLANK:
            value = ""
        if value is not None or f.name in _CLEARED_TO_NONE:
            values[f.name] = value
    return values


def _check_time_zone(name: str) -> None:
    # The zones the tz database lists (what the API document enumerates), not any file
    # ZoneInfo happens to load ("posixrules").
    if name not in _zones():
        raise ValidationFailed.field("timezone", "is not an IANA time zone")


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


@transaction.atomic
def create_event(spec: EventSpec) -> Event:
    _check_time_zone(spec.timezone)
    if spec.ends_at <= spec.starts_at:
        raise ValidationFailed.field("ends_at", "must be after starts_at")
    program = get_by_id(Program, spec.program_id, "program") if spec.program_id else None
    currency = validate_currency(spec.currency)
    if currency == POINTS:
        raise ValidationFailed.field("currency", "an event is priced in money, not PTS")
    points = spec.attendance_points
    if points is None:
        points = program.attendance_points if program else 0
    return Event.objects.create(
        name=spec.name,
        starts_at=spec.starts_at,
        ends_at=spec.ends_at,
        timezone=spec.timezone,
        currency=currency,
        capacity=spec.capacity,
        venue=spec.venue,
        description=spec.description,
        status=spec.status,
        program=program,
        attendance_points=points,
        waitlist_offer_hours=spec.waitlist_offer_hours,
    )


@transaction.atomic
def update_event(event_id: str, changes: EventChanges) -> Event:
    event = lock_event(event_id)
    data = _new_values(changes)
    limit = changes.capacity
    if isinstance(limit, int) and limit < event.sold:
        raise Conflict(
            f"{event.sold} places are taken; the capacity cannot go below that.",
            errors=[{"field": "capacity", "message": f"at least {event.sold}"}],
        )
    if isinstance(changes.timezone, str):
        _check_time_zone(changes.timezone)
    for name, value in data.items():
        setattr(event, name, value)
    if event.ends_at <= event.starts_at:
        raise ValidationFailed.field("ends_at", "must be after starts_at")
    event.save()
    if "capacity" in data:  # more places: the people waiting get them first
        from tessera.events.tasks import offer_places_task

        offer_places_task.enqueue(event.pk)
    return event


@transaction.atomic
def add_item(event_id: str, spec: ItemSpec) -> EventItem:
    event = get_event(event_id)
    if spec.sales_start and spec.sales_end and spec.sales_end <= spec.sales_start:
        raise ValidationFailed.field("sales_end", "must be after sales_start")
    position = EventItem.objects.filter(event=event).count()
    return EventItem.objects.create(event=event, position=position, **spec.__dict__)


def _event_items(event: Event, ids: Sequence[str], field_name: str) -> list[EventItem]:
    items = list(EventItem.objects.filter(event=event, pk__in=list(ids)))
    unknown = sorted(set(ids) - {i.pk for i in items})
    if unknown:
        raise ValidationFailed.field(field_name, f"not items of this event: {', '.join(unknown)}")
    return items


@transaction.atomic
def add_question(event_id: str, spec: QuestionSpec) -> Question:
    event = get_event(event_id)
    choices = spec.type in (Question.Type.SELECT, Question.Type.MULTISELECT)
    if choices and len(spec.options) < 2:
        raise ValidationFailed.field("options", f"a {spec.type} question needs two options")
    if not choices and spec.options:
        raise ValidationFailed.field("options", f"a {spec.type} question takes no options")
    items = _event_items(event, spec.item_ids, "item_ids")
    question = Question.objects.create(
        event=event,
        label=spec.label,
        type=spec.type,
        required=spec.required,
        options=list(spec.options),
        per_attendee=spec.per_attendee,
        position=Question.objects.filter(event=event).count(),
    )
    question.items.set(items)
    return question


@transaction.atomic
def add_promo_code(event_id: str, spec: PromoSpec) -> PromoCode:
    event = get_event(event_id)
    code = spec.code.strip().upper()
    if PromoCode.objects.filter(event=event, code=code).exists():
        raise Conflict(f"The event already has the code {code}.", code="promo_code_exists")
    if spec.valid_from and spec.valid_until and spec.valid_until <= spec.valid_from:
        raise ValidationFailed.field("valid_until", "must be after valid_from")
    items = _event_items(event, spec.item_ids, "item_ids")
    promo = PromoCode.objects.create(
        event=event,
        code=code,
        percent_off=spec.percent_off,
        amount_off=spec.amount_off,
        max_uses=spec.max_uses,
        valid_from=spec.valid_from,
        valid_until=spec.valid_until,
    )
    promo.items.set(items)
    return promo


def get_event(event_id: str) -> Event:
    return get_by_id(Event.objects.prefetch_related("items"), event_id, "event")


def live_events() -> QuerySet[Event]:
    return Event.objects.filter(status=Event.Status.LIVE).prefetch_related("items")


def available(capacity: int | None, sold: int, waiting: int) -> int | None:
    """What a buyer can still take: places neither sold, held nor owed to the waitlist."""
    return None if capacity is None else max(0, capacity - sold - waiting)


def get_checkout(checkout_id: str) -> Checkout:
    return get_by_id(
        Checkout.objects.select_related(
            "event", "invoice", "transaction__payment_method"
        ).prefetch_related("attendees", "invoice__lines"),
        checkout_id,
        "checkout",
    )


def get_attendee(attendee_id: str) -> Attendee:
    return get_by_id(Attendee.objects.select_related("ticket"), attendee_id, "attendee")


def attendees_of(event_id: str, status: str | None) -> QuerySet[Attendee]:
    event = get_event(event_id)
    qs = Attendee.objects.filter(event=event).select_related("contact", "ticket")
    return qs.filter(status=status) if status else qs


CSV_COLUMNS = (
    "id",
    "status",
    "first_name",
    "last_name",
    "email",
    "ticket",
    "registered_at",
    "checked_in_at",
    "cancelled_at",
    "checkout_id",
)


def attendees_csv(event_id: str, status: str | None) -> str:
    """The event's attendees as CSV (a spreadsheet's export)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    rows = (
        attendees_of(event_id, status)
        .order_by("pk")
        .values_list(
            "pk",
            "status",
            "contact__first_name",
            "contact__last_name",
            "contact__email",
            F("ticket__name"),
            "registered_at",
            "checked_in_at",
            "cancelled_at",
            "checkout_id",
        )
    )
    for row in rows.iterator(chunk_size=2000):
        writer.writerow(safe_cell(v) for v in row)
    return out.getvalue()
