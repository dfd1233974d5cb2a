"""An event's catalogue is cached per process by its version: an edit made after checkouts
have read it is seen by the next checkout, and a whole-row save (the admin's) never writes
a counter of places back over the places taken since it read the row."""

from __future__ import annotations

from typing import Any

import pytest

from tessera.events.catalogue import catalogue
from tessera.events.models import Event, EventItem, PromoCode
from tests.support.api import Api, assert_problem
from tests.support.events import attendee, body, event, item, promo, question

pytestmark = pytest.mark.django_db


def fields(problem: dict[str, Any]) -> list[str]:
    return [e["field"] for e in problem["errors"]]


@pytest.fixture
def sold_once(api: Api) -> tuple[Event, EventItem]:
    """An event whose free ticket one checkout has bought: its catalogue is cached."""
    ev = event()
    ticket = item(ev, price=0)
    api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket, 1)))
    return ev, ticket


def edit(ticket: EventItem, **change: Any) -> None:
    edited = EventItem.objects.get(pk=ticket.pk)
    for name, value in change.items():
        setattr(edited, name, value)
    edited.save()


def test_a_second_checkout_reads_the_catalogue_from_the_cache(
    sold_once: tuple[Event, EventItem],
) -> None:
    ev, _ = sold_once
    fresh = Event.objects.get(pk=ev.pk)
    assert catalogue(fresh) is catalogue(fresh)


def test_an_item_switched_off_after_a_checkout_is_refused_by_the_next(
    api: Api, sold_once: tuple[Event, EventItem]
) -> None:
    ev, ticket = sold_once
    edit(ticket, active=False)
    r = api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket, 2)))
    assert fields(assert_problem(r, 422, "validation_error")) == ["attendees.0.items.0.item_id"]


def test_a_price_changed_after_a_checkout_is_charged_by_the_next(
    api: Api, sold_once: tuple[Event, EventItem]
) -> None:
    ev, ticket = sold_once
    edit(ticket, price=1500)
    r = api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket, 2)))
    assert fields(assert_problem(r, 422, "validation_error")) == ["payment"]


def test_a_question_added_after_a_checkout_is_asked_by_the_next(
    api: Api, sold_once: tuple[Event, EventItem]
) -> None:
    ev, ticket = sold_once
    asked = question(ev, required=True)
    r = api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket, 2)))
    problem = assert_problem(r, 422, "validation_error")
    assert asked.label in problem["errors"][0]["message"]


def test_a_deleted_item_is_gone_for_the_next_checkout(api: Api) -> None:
    ev = event()
    ticket, other = item(ev, price=0), item(ev, price=0, name="Other")
    api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket, 1)))
    EventItem.objects.get(pk=other.pk).delete()
    r = api.post(f"/events/{ev.pk}/checkout", body(attendee(other, 2)))
    assert fields(assert_problem(r, 422, "validation_error")) == ["attendees.0.items.0.item_id"]


def test_saving_an_item_read_before_a_sale_keeps_the_sale(api: Api) -> None:
    ev = event()
    ticket = item(ev, price=0, capacity=10)
    stale = EventItem.objects.get(pk=ticket.pk)  # an admin form opened before the sale
    api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket, 1)))
    stale.name = "Renamed"
    stale.save()
    assert EventItem.objects.get(pk=ticket.pk).sold == 1


def test_saving_an_event_read_before_a_sale_keeps_the_sale(api: Api) -> None:
    ev = event(capacity=10)
    ticket = item(ev, price=0)
    stale = Event.objects.get(pk=ev.pk)
    api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket, 1)))
    stale.venue = "Elsewhere"
    stale.save()
    assert Event.objects.get(pk=ev.pk).sold == 1


def test_saving_a_promo_code_read_before_a_use_keeps_the_use(api: Api) -> None:
    ev = event()
    ticket = item(ev, price=0)
    code = promo(ev, percent_off=10, max_uses=5)
    stale = PromoCode.objects.get(pk=code.pk)
    api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket, 1), promo_code="EARLY"))
    stale.active = True
    stale.save()
    assert PromoCode.objects.get(pk=code.pk).used == 1


def test_a_capacity_below_the_places_taken_is_refused_by_the_form_check(api: Api) -> None:
    from django.core.exceptions import ValidationError

    ev = event()
    ticket = item(ev, price=0, capacity=10)
    api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket, 1)))
    edited = EventItem.objects.get(pk=ticket.pk)
    edited.capacity = 0
    with pytest.raises(ValidationError):
        edited.full_clean()
