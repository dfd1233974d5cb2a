"""Seed the browser tests' database: run as ``python -m tests.e2e.portal_seed`` with the
stack's environment; prints what the tests need as JSON.

Two members with records of each kind (so each can try to open the other's), activities,
products, an event payable in points and one already sold out."""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tessera.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from tessera.core.apikeys import create_api_key
    from tessera.core.models import SCOPE_ADMIN
    from tessera.crm.services import ContactInput, create_contact
    from tessera.events import services as events
    from tessera.events.checkout import check_out
    from tessera.events.requests import AttendeeIn, CheckoutIn, LineIn, PersonIn
    from tessera.loyalty.activities import ActivitySpec, create_activity
    from tessera.loyalty.adjustments import adjust_points
    from tessera.loyalty.ordering import OrderLineSpec, ProductSpec, create_product, place_order
    from tessera.loyalty.programs import ProgramSpec, create_program, enroll_member

    media = os.environ["E2E_MEDIA_URL"]
    club = create_program(ProgramSpec(**{"name": "Club", "points_per_unit": 100, "currency": "USD",
                           "low_balance_threshold": 200}))  # fmt: skip

    def person(first: str, email: str) -> tuple[str, str]:
        contact = create_contact(ContactInput(first_name=first, last_name="Tester", email=email),
                                 check_duplicates=False).record  # fmt: skip
        m, _ = enroll_member(club.pk, contact_id=contact.pk)
        adjust_points(m.pk, points=5000, reason="welcome")
        return m.pk, contact.pk

    ada, _ = person("Ada", "ada@e2e.test")
    bob, _ = person("Bob", "bob@e2e.test")
    staff = get_user_model().objects.create_user(
        "staff", email="staff@e2e.test", password="staff-pass-123", is_staff=True
    )
    activities = {
        "question": create_activity(ActivitySpec(**{"program_id": club.pk, "kind": "question", "title": "Capital",
                                     "points": 10, "question": "Capital of France?",
                                     "options": ["Paris", "Lyon"], "correct_option": "Paris"})).pk,
        "vote": create_activity(ActivitySpec(**{"program_id": club.pk, "kind": "vote", "title": "Next venue",
                                 "points": 5, "question": "Where next?",
                                 "options": ["Lisbon", "Oslo"]})).pk,
        "video": create_activity(ActivitySpec(**{"program_id": club.pk, "kind": "video", "title": "Welcome film",
                                  "points": 20, "video_url": f"{media}/welcome.wav",
                                  "min_watch_seconds": 2})).pk,
    }  # fmt: skip
    mug = create_product(ProductSpec(program_id=club.pk, name="Mug", price_points=300, stock=10))
    jacket = create_product(ProductSpec(program_id=club.pk, name="Jacket", price_points=900000))
    bobs_order = place_order(bob, [OrderLineSpec(mug.pk, 1)]).order

    start = timezone.now() + timedelta(days=20)
    summit = events.create_event(events.EventSpec(
        name="Summit", starts_at=start, ends_at=start + timedelta(hours=8), timezone="Europe/Lisbon",
        currency="USD", venue="Lisbon Congress Centre", program_id=club.pk, attendance_points=50,
    ))  # fmt: skip
    ticket = events.add_item(summit.pk, events.ItemSpec(name="Day pass", kind="ticket", price=1500))
    full = events.create_event(events.EventSpec(
        name="Masterclass", starts_at=start, ends_at=start + timedelta(hours=2),
        timezone="Europe/Lisbon", currency="USD", capacity=1,
    ))  # fmt: skip
    seat = events.add_item(
        full.pk, events.ItemSpec(name="Seat", kind="ticket", price=0, capacity=1)
    )
    bob_person = PersonIn("Bob", "Tester", "bob@e2e.test")
    bobs = check_out(CheckoutIn(full.pk, bob_person, (AttendeeIn(bob_person, (LineIn(seat.pk),)),)))
    _, key = create_api_key("e2e", [SCOPE_ADMIN])
    json.dump({
        "api_key": key, "program": club.pk, "ada": ada, "bob": bob, "staff_user": staff.username,
        "activities": activities, "mug": mug.pk, "jacket": jacket.pk, "bobs_order": bobs_order.pk,
        "summit": summit.pk, "day_pass": ticket.pk, "masterclass": full.pk,
        "bobs_checkout": bobs.checkout_id,
    }, sys.stdout)  # fmt: skip


if __name__ == "__main__":
    main()
