"""Seeds a scale-out stack's database and prints what the clients need, as JSON.

    python -m tests.support.scaleout_seed [--clients 16]

Run with the stack's environment (its DATABASE_URL), after ``tessera migrate``:
- the checkout race: a free ticket with CAPACITY places;
- the wallet race: one member holding enough points for AFFORDABLE orders of PRICE each;
- the throughput workload: one well-funded member per client and a 1-point product.
"""

from __future__ import annotations

import argparse
import json
import os
from datetime import timedelta

CAPACITY = 10
PRICE = 100
AFFORDABLE = 25


def seed(clients: int) -> dict[str, object]:
    from django.utils import timezone

    from tessera.core.apikeys import create_api_key
    from tessera.crm.models import Contact
    from tessera.events import services
    from tessera.loyalty.adjustments import adjust_points
    from tessera.loyalty.ordering import ProductSpec, create_product
    from tessera.loyalty.programs import ProgramSpec, create_program, enroll_member

    program = create_program(ProgramSpec(**{"name": "Scale-out", "points_per_unit": 100, "currency": "EUR",
                              "low_balance_threshold": 0}))  # fmt: skip
    start = timezone.now() + timedelta(days=30)
    event = services.create_event(services.EventSpec(
        name="Scale-out Summit", starts_at=start, ends_at=start + timedelta(hours=8),
        timezone="Europe/Berlin", currency="EUR", capacity=None, program_id=program.pk,
    ))  # fmt: skip
    ticket = services.add_item(
        event.pk, services.ItemSpec(name="Seat", kind="ticket", price=0, capacity=CAPACITY)
    )
    mug = create_product(ProductSpec(program_id=program.pk, name="Mug", price_points=PRICE))
    sticker = create_product(ProductSpec(program_id=program.pk, name="Sticker", price_points=1))

    def funded(name: str, points: int) -> str:
        contact = Contact.objects.create(first_name=name, last_name="Scale",
                                         email=f"{name.lower()}@scale.test")  # fmt: skip
        member, _ = enroll_member(program.pk, contact_id=contact.pk)
        adjust_points(member.pk, points=points, reason="opening balance")
        return str(member.pk)

    _, key = create_api_key("scaleout", ["admin"])
    return {
        "api_key": key,
        "event": event.pk,
        "ticket": ticket.pk,
        "mug": mug.pk,
        "sticker": sticker.pk,
        "race_member": funded("Racer", AFFORDABLE * PRICE),
        "members": [funded(f"Client{i}", 10_000_000) for i in range(clients)],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tessera.settings")
    import django

    django.setup()
    print(json.dumps(seed(args.clients)))  # noqa: T201 - the caller reads it


if __name__ == "__main__":
    main()
