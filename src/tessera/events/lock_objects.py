"""Every row lock the events app takes, in one place (rule 3).

Each function here must run inside ``transaction.atomic()``: the lock lasts until that
transaction ends, and Django refuses ``select_for_update`` outside one. Each locks only its
own rows: one that joins rows for reading names ``of=("self",)``, because the joined rows
(the event, the contact) are every checkout's, and locking them would serialise checkouts
that never meet.

Capacity is not locked here: items and the event are taken with conditional UPDATEs in
primary-key order (``capacity.take_places``), which lock each counter row as they move it.
Callers re-lock and return at once if another got there first (the API answer, the
webhook and the reconciler may all arrive). The payment of a checkout is billing's row and
is locked with ``billing.lock_objects.lock_transaction``.
"""

from __future__ import annotations

from django.db.models import QuerySet

from tessera.core.lookup import get_by_id
from tessera.events.models import Attendee, Checkout, Event, WaitlistEntry


def lock_event(event_id: str) -> Event:
    """The event's row, locked (NotFound if unknown). Inside an atomic block. Only an
    organiser's change takes it: checkouts move the event's counter with one UPDATE."""
    return get_by_id(Event.objects.select_for_update().order_by("pk"), event_id, "event")


def lock_attendee(attendee_id: str, *related: str) -> Attendee:
    """The attendee's row, locked, with ``related`` joined for reading (NotFound if
    unknown). Inside an atomic block. The joined rows are not locked: the event's and the
    contact's rows are shared with every other ticket."""
    locked = Attendee.objects.select_for_update(of=("self",)).select_related(*related)
    return get_by_id(locked.order_by("pk"), attendee_id, "attendee")


def lock_checkout(checkout_id: str) -> Checkout:
    """The checkout's row, locked: completion, failure and expiry re-lock it and return at
    once if another got there first. Inside an atomic block. Only its own row: the
    event's is every checkout's."""
    return (
        Checkout.objects.select_for_update(of=("self",)).select_related("event").get(pk=checkout_id)
    )


def lock_waitlist_entry(entry_id: str) -> WaitlistEntry:
    """One waiting entry's row, locked, with its item. Inside an atomic block."""
    return (
        WaitlistEntry.objects.select_for_update(of=("self",))
        .select_related("item")
        .get(pk=entry_id)
    )


def first_waiting(item_id: str) -> QuerySet[WaitlistEntry]:
    """An item's waiting entries in queue order (primary key), each locked as it is read,
    skipping those another transaction holds: two releases of the same item offer to
    different people instead of waiting for each other. Evaluate it inside an atomic
    block; slice it for how many places are free."""
    return (
        WaitlistEntry.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("contact", "event", "item")
        .filter(item_id=item_id, status=WaitlistEntry.Status.WAITING)
        .order_by("pk")
    )
