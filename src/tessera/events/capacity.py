"""Every counter move of the events app, in one place (its row locks are in ``lock_objects``).

Capacity is taken with one conditional UPDATE per counter (``sold + n + waiting <=
capacity``), never with an event-wide lock: two checkouts for different items only meet
at the event's own counter, which is moved last so its row lock is held from there to the
commit, as the ledger moves its shared accounts last. Items are taken in primary-key order,
so two checkouts never deadlock. A refusal is raised, and the caller's transaction rolls
back every counter it moved; the check constraints on the counters refuse an oversell even
if a caller forgot a condition.

An item's waiting entries count against its availability (``waiting``), and a place freed
while people wait is handed to the first of them in the transaction that frees it
(``waitlist.release_places``), so it is never bought by someone who was not waiting.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db.models import F, Q

from tessera.core.errors import Conflict
from tessera.events.models import Event, EventItem, PromoCode


class SoldOut(Conflict):
    code = "sold_out"
    title = "Not enough places left"


class PromoCodeUsedUp(Conflict):
    code = "promo_code_used_up"
    title = "The promo code has no uses left"


def _fits(n: int) -> Q:
    """An item has room for ``n`` beyond what is sold and what its waiting list is owed."""
    return Q(capacity__isnull=True) | Q(capacity__gte=F("sold") + F("waiting") + n)


def _event_fits(n: int) -> Q:
    return Q(capacity__isnull=True) | Q(capacity__gte=F("sold") + n)


def _available(capacity: int | None, sold: int, waiting: int) -> int | None:
    return None if capacity is None else max(0, capacity - sold - waiting)


def take_places(event: Event, wanted: Mapping[str, int], places: int) -> None:
    """Take ``wanted`` (item id -> quantity) and ``places`` of the event, or raise SoldOut
    naming every item short and what is left. Inside the caller's transaction."""
    short: list[str] = []
    for item_id in sorted(wanted):
        quantity = wanted[item_id]
        if quantity <= 0:
            continue
        taken = EventItem.objects.filter(_fits(quantity), pk=item_id).update(
            sold=F("sold") + quantity
        )
        if not taken:
            short.append(item_id)
    event_short = False
    if places > 0 and not short:  # last: the one row every checkout of the event shares
        event_short = not Event.objects.filter(_event_fits(places), pk=event.pk).update(
            sold=F("sold") + places
        )
    if short or event_short:
        raise _sold_out(event, wanted, places, short, event_short)


def _sold_out(
    event: Event, wanted: Mapping[str, int], places: int, short: list[str], event_short: bool
) -> SoldOut:
    items = EventItem.objects.filter(pk__in=short).values(
        "pk", "name", "capacity", "sold", "waiting"
    )
    listed: list[dict[str, Any]] = [
        {
            "item_id": i["pk"],
            "name": i["name"],
            "wanted": wanted[i["pk"]],
            "available": _available(i["capacity"], i["sold"], i["waiting"]),
        }
        for i in items
    ]
    if event_short:
        fresh = Event.objects.values("capacity", "sold").get(pk=event.pk)
        listed.append(
            {
                "item_id": None,
                "name": event.name,
                "wanted": places,
                "available": _available(fresh["capacity"], fresh["sold"], 0),
            }
        )
    names = ", ".join(f"{e['name']} ({e['available']} left, {e['wanted']} wanted)" for e in listed)
    return SoldOut(f"Sold out: {names}.", items=listed)


def give_back(event_id: str, held: Mapping[str, int], places: int) -> None:
    """Return what a checkout held (it failed, expired or was cancelled)."""
    for item_id in sorted(held):
        if held[item_id] > 0:
            EventItem.objects.filter(pk=item_id).update(sold=F("sold") - held[item_id])
    if places > 0:
        Event.objects.filter(pk=event_id).update(sold=F("sold") - places)


def take_promo_use(promo: PromoCode) -> None:
    """One use of the code, never past its maximum (a conditional update, like places)."""
    fits = Q(max_uses__isnull=True) | Q(used__lt=F("max_uses"))
    if not PromoCode.objects.filter(fits, pk=promo.pk).update(used=F("used") + 1):
        raise PromoCodeUsedUp(
            f"The promo code {promo.code} has been used up.",
            errors=[{"field": "promo_code", "message": "has no uses left"}],
        )


def give_back_promo_use(promo_id: str) -> None:
    PromoCode.objects.filter(pk=promo_id, used__gt=0).update(used=F("used") - 1)


def join_queue(item: EventItem) -> None:
    """A new waiting entry: it counts against the item's availability."""
    EventItem.objects.filter(pk=item.pk).update(waiting=F("waiting") + 1)


def leave_queue(item_id: str, n: int = 1) -> None:
    """``n`` entries leave the queue (offered a place, or withdrawn)."""
    EventItem.objects.filter(pk=item_id, waiting__gte=n).update(waiting=F("waiting") - n)


def offer_place(item: EventItem) -> bool:
    """Hold one newly free place (capacity raised, say) for the first waiting entry: the
    item, and the event for a ticket, must have room for one more. Whether it did."""
    free = Q(capacity__isnull=True) | Q(capacity__gte=F("sold") + 1)
    moved = EventItem.objects.filter(free, pk=item.pk, waiting__gt=0).update(
        sold=F("sold") + 1, waiting=F("waiting") - 1
    )
    if not moved:
        return False
    if item.takes_a_place and not Event.objects.filter(free, pk=item.event_id).update(
        sold=F("sold") + 1
    ):
        EventItem.objects.filter(pk=item.pk).update(sold=F("sold") - 1, waiting=F("waiting") + 1)
        return False  # the item has room, the event not: nothing offered
    return True
