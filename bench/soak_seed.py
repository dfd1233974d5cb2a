"""Seed the soak's database: ``python -m bench.soak_seed`` with the stack's environment;
prints what the workload needs as JSON.

A program with funded members (each a contact with an email, for portal sign-in), question
activities (each completable once per member), two products (one with little stock), an
event whose items and event capacity sell out during the run (the oversell check) and one
without limits (so card checkouts go on after the first sells out), and an admin API key."""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta

MEMBERS = 40
ACTIVITIES = 30
LIMITED_EVENT_CAPACITY = 60
LIMITED_ITEM_CAPACITY = 40  # two items of 40 under an event of 60: both limits bind
WELCOME_POINTS = 20_000


def _program_and_members() -> tuple[str, list[dict[str, str]]]:
    from tessera.crm.services import ContactInput, create_contact
    from tessera.loyalty.adjustments import adjust_points
    from tessera.loyalty.programs import ProgramSpec, create_program, enroll_member

    club = create_program(ProgramSpec(**{"name": "Soak Club", "points_per_unit": 100, "currency": "USD",
                           "low_balance_threshold": 200}))  # fmt: skip
    members = []
    for i in range(MEMBERS):
        email = f"member{i}@soak.test"
        contact = create_contact(
            ContactInput(first_name=f"Member{i}", last_name="Soak", email=email),
            check_duplicates=False,
        ).record
        member, _ = enroll_member(club.pk, contact_id=contact.pk)
        adjust_points(member.pk, points=WELCOME_POINTS, reason="welcome")
        members.append({"id": member.pk, "email": email, "contact": contact.pk})
    return club.pk, members


def _catalogue(program: str) -> dict[str, object]:
    from tessera.loyalty.activities import ActivitySpec, create_activity
    from tessera.loyalty.ordering import ProductSpec, create_product

    activities = [
        create_activity(ActivitySpec(**{"program_id": program, "kind": "question", "title": f"Question {i}",
                         "points": 10, "question": f"Is {i} even?", "options": ["yes", "no"],
                         "correct_option": "yes" if i % 2 == 0 else "no"})).pk
        for i in range(ACTIVITIES)
    ]  # fmt: skip
    mug = create_product(
        ProductSpec(**{"program_id": program, "name": "Mug", "price_points": 300, "stock": 50})
    )
    pin = create_product(ProductSpec(**{"program_id": program, "name": "Pin", "price_points": 10}))
    return {"activities": activities, "products": [mug.pk, pin.pk], "mug": mug.pk}


def _events(program: str) -> dict[str, object]:
    from django.utils import timezone

    from tessera.events import services as events

    start = timezone.now() + timedelta(days=20)

    def event(name: str, capacity: int | None, item_capacity: int | None) -> dict[str, str]:
        spec = events.EventSpec(
            name=name, starts_at=start, ends_at=start + timedelta(hours=8), timezone="UTC",
            currency="USD", venue="Soak Hall", program_id=program, capacity=capacity,
        )  # fmt: skip
        made = events.create_event(spec)
        paid = events.add_item(made.pk, events.ItemSpec(
            name="Day pass", kind="ticket", price=1500, capacity=item_capacity))  # fmt: skip
        free = events.add_item(made.pk, events.ItemSpec(
            name="Community pass", kind="ticket", price=0, capacity=item_capacity))  # fmt: skip
        return {"id": made.pk, "paid": paid.pk, "free": free.pk}

    return {
        "limited": event("Soak Limited", LIMITED_EVENT_CAPACITY, LIMITED_ITEM_CAPACITY),
        "open": event("Soak Open", None, None),
    }


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tessera.settings")
    import django

    django.setup()
    from tessera.core.apikeys import create_api_key
    from tessera.core.models import SCOPE_ADMIN

    program, members = _program_and_members()
    seed: dict[str, object] = {"program": program, "members": members}
    seed.update(_catalogue(program))
    seed["events"] = _events(program)
    _, seed["api_key"] = create_api_key("soak", [SCOPE_ADMIN])
    json.dump(seed, sys.stdout)


if __name__ == "__main__":
    main()
