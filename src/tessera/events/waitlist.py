"""The waitlist: people queue for a sold-out item; a freed place is offered to the first.

A waiting entry counts against its item's availability, and a place freed while people
wait (a cancellation, a failed payment, an expired hold or offer) is handed to the first
of them in the same transaction that frees it (``release_places``): it is held for them
and never returns to sale, so nobody who was not waiting can take it. The offer is a
single-use token, emailed, valid for the event's ``waitlist_offer_hours``; a checkout
carrying it redeems the held place. An offer that runs out passes to the next entry.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from tessera.core.errors import Conflict, ValidationFailed
from tessera.core.lookup import get_by_id
from tessera.crm.services import contact_for, record_timeline, resolve_person
from tessera.events import capacity
from tessera.events.lock_objects import first_waiting, lock_waitlist_entry
from tessera.events.models import Event, EventItem, WaitlistEntry
from tessera.events.requests import PersonIn
from tessera.notifications.services import queue_email

W = WaitlistEntry.Status


class PlacesAvailable(Conflict):
    code = "places_available"
    title = "Places are available: check out instead"


@dataclass(frozen=True)
class Joined:
    entry: WaitlistEntry
    created: bool


@transaction.atomic
def join_waitlist(event_id: str, item_id: str, person: PersonIn) -> Joined:
    """Queue ``person`` for a sold-out item; the same person again keeps their place."""
    event = get_by_id(Event, event_id, "event")
    item = EventItem.objects.filter(event=event, pk=item_id).first()
    if item is None:
        raise ValidationFailed.field("item_id", "no such item in this event")
    if event.status != Event.Status.LIVE:
        raise ValidationFailed.field("event_id", f"the event is {event.status}")
    contact = contact_for(resolve_person(person.as_contact()))
    existing = WaitlistEntry.objects.filter(
        item=item, contact=contact, status__in=[W.WAITING, W.OFFERED]
    ).first()
    if existing is not None:
        return Joined(existing, created=False)
    if _has_room(item, event):
        raise PlacesAvailable(f"{item.name} still has places; buy one instead.", item_id=item.pk)
    entry = WaitlistEntry.objects.create(event=event, item=item, contact=contact)
    capacity.join_queue(item)
    record_timeline(
        contact,
        kind="waitlist",
        obj=entry,
        summary=f"On the waitlist for {item.name}",
        data={"event_id": event.pk, "item_id": item.pk},
    )
    return Joined(entry, created=True)


def _has_room(item: EventItem, event: Event) -> bool:
    fresh = EventItem.objects.values("capacity", "sold", "waiting").get(pk=item.pk)
    if fresh["capacity"] is not None and fresh["capacity"] - fresh["sold"] - fresh["waiting"] <= 0:
        return False
    if not item.takes_a_place:
        return True
    at_event = Event.objects.values("capacity", "sold").get(pk=event.pk)
    return at_event["capacity"] is None or at_event["capacity"] - at_event["sold"] > 0


def release_places(event_id: str, held: Mapping[str, int], places: int) -> None:
    """Give back what a checkout or ticket held: first to the people waiting for each item
    (the place stays held, now for them), the rest back on sale. In the caller's
    transaction."""
    kinds = dict(EventItem.objects.filter(pk__in=list(held)).values_list("pk", "kind"))
    remaining = dict(held)
    for item_id in sorted(held):
        handed = _hand_over(item_id, held[item_id])
        remaining[item_id] -= handed
        if kinds.get(item_id) == EventItem.Kind.TICKET:
            places -= handed
    capacity.give_back(event_id, remaining, max(places, 0))


def _hand_over(item_id: str, count: int) -> int:
    """Offer up to ``count`` freed places of an item to its first waiting entries."""
    if count <= 0:
        return 0
    entries = list(first_waiting(item_id)[:count])
    for entry in entries:
        _offer(entry)
    if entries:
        capacity.leave_queue(item_id, len(entries))
    return len(entries)


def _offer(entry: WaitlistEntry) -> None:
    token = secrets.token_urlsafe(24)
    now = timezone.now()
    entry.status = W.OFFERED
    entry.token_digest = hashlib.sha256(token.encode()).hexdigest()
    entry.offered_at = now
    entry.offer_expires_at = now + timedelta(hours=entry.event.waitlist_offer_hours)
    entry.save(update_fields=["status", "token_digest", "offered_at", "offer_expires_at"])
    if not entry.contact.email:
        return
    local = entry.offer_expires_at.astimezone(ZoneInfo(entry.event.timezone))
    queue_email(
        "waitlist_offer",
        to=entry.contact.email,
        contact=entry.contact,
        context={
            "first_name": entry.contact.first_name,
            "event": entry.event.name,
            "item": entry.item.name,
            "token": token,
            "offer_path": f"/events/{entry.event_id}?waitlist_token={token}",
            "expires_at": local.strftime("%d %B %Y, %H:%M"),
            "time_zone": entry.event.timezone,
        },
    )


def offer_places(event_id: str) -> int:
    """Offer places that became free without a release (capacity raised) to the first
    waiting entries; how many."""
    offered = 0
    for item in EventItem.objects.filter(event_id=event_id, waiting__gt=0).order_by("pk"):
        while _offer_next(item):
            offered += 1
    return offered


@transaction.atomic
def _offer_next(item: EventItem) -> bool:
    entry = first_waiting(item.pk).first()
    if entry is None or not capacity.offer_place(item):
        return False
    _offer(entry)
    return True


def expire_offers() -> int:
    """Offers not redeemed in time: each held place passes to the next entry, or back on
    sale when nobody waits."""
    now = timezone.now()
    due = list(
        WaitlistEntry.objects.filter(status=W.OFFERED, offer_expires_at__lt=now).values_list(
            "pk", flat=True
        )[:500]
    )
    for entry_id in due:
        with transaction.atomic():
            entry = lock_waitlist_entry(entry_id)
            busy = entry.checkouts.filter(status__in=["pending", "requires_action"]).exists()
            if entry.status != W.OFFERED or busy:
                continue  # redeemed meanwhile, or a checkout with it is still paying
            entry.status = W.EXPIRED
            entry.save(update_fields=["status"])
            places = 1 if entry.item.takes_a_place else 0
            release_places(entry.event_id, {entry.item_id: 1}, places)
    return len(due)
