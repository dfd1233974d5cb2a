"""Builders for the events tests: an event on sale, its items, and checkout bodies as an
integrator would send them."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.utils import timezone

from tessera.events import services
from tessera.events.models import Event, EventItem, PromoCode, Question


def event(**kw: Any) -> Event:
    start = timezone.now() + timedelta(days=30)
    spec = {
        "name": "Summit",
        "starts_at": start,
        "ends_at": start + timedelta(hours=6),
        "timezone": "Europe/Berlin",
        "currency": "EUR",
        **kw,
    }
    return services.create_event(services.EventSpec(**spec))


def item(ev: Event, price: int = 5000, **kw: Any) -> EventItem:
    spec = {"name": "General", "kind": "ticket", "price": price, **kw}
    return services.add_item(ev.pk, services.ItemSpec(**spec))


def question(ev: Event, **kw: Any) -> Question:
    spec = {"label": "Dietary needs", "type": "text", **kw}
    return services.add_question(ev.pk, services.QuestionSpec(**spec))


def promo(ev: Event, **kw: Any) -> PromoCode:
    return services.add_promo_code(ev.pk, services.PromoSpec(**{"code": "EARLY", **kw}))


def person(n: int = 0, **kw: Any) -> dict[str, Any]:
    return {
        "first_name": f"Guest{n}",
        "last_name": "Example",
        "email": f"guest{n}@example.org",
        **kw,
    }


def attendee(ticket: EventItem, n: int = 0, *extra: EventItem, **kw: Any) -> dict[str, Any]:
    items = [{"item_id": ticket.pk, "quantity": 1}] + [{"item_id": i.pk} for i in extra]
    return {**person(n), "items": items, **kw}


def body(*attendees: dict[str, Any], payment: Any = None, **kw: Any) -> dict[str, Any]:
    buyer = {k: v for k, v in attendees[0].items() if k in ("first_name", "last_name", "email")}
    return {"buyer": buyer, "attendees": list(attendees), "payment": payment, **kw}


def by_card(pm: str) -> dict[str, str]:
    return {"method": "card", "payment_method_id": pm}


def by_wallet(member_id: str) -> dict[str, str]:
    return {"method": "wallet", "member_id": member_id}


def content(response: Any) -> dict[str, Any]:
    return dict(json.loads(response.content))
