"""The demo's events: a conference with tiers, an add-on, questions and a promo code, and
a meetup whose standard tickets are sold out with people on the waitlist."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.utils import timezone

from tessera.events import services, waitlist
from tessera.events.checkout import check_out
from tessera.events.requests import AnswerIn, AttendeeIn, CheckoutIn, LineIn, PaymentIn, PersonIn
from tessera.loyalty.adjustments import adjust_points
from tessera.loyalty.models import Member, Program

ADA = PersonIn("Ada", "Lovelace", "ada@northwind.example")


def load_demo_events() -> None:
    program = Program.objects.get(name="Tessera Rewards")
    start = (timezone.now() + timedelta(days=45)).replace(
        hour=16, minute=0, second=0, microsecond=0
    )
    _summit(program, start)
    _meetup(program, start - timedelta(days=30))


def _summit(program: Program, start: datetime) -> None:
    summit = services.create_event(
        services.EventSpec(
            name="Tessera Summit 2027",
            starts_at=start,
            ends_at=start + timedelta(hours=8),
            timezone="Europe/London",
            currency="USD",
            capacity=500,
            venue="The Barbican, London",
            description="A day of talks on membership programs.",
            program_id=program.pk,
        )
    )
    general = services.add_item(
        summit.pk,
        services.ItemSpec(
            name="General admission", kind="ticket", price=4900, capacity=450, tax_rate_bp=2000
        ),
    )
    services.add_item(
        summit.pk,
        services.ItemSpec(
            name="VIP", kind="ticket", price=19900, capacity=50, tax_rate_bp=2000, max_per_order=4
        ),
    )
    services.add_item(
        summit.pk,
        services.ItemSpec(
            name="Afternoon workshop", kind="addon", price=2500, capacity=40, tax_rate_bp=2000
        ),
    )
    services.add_item(
        summit.pk,
        services.ItemSpec(name="Donation to the scholarship fund", kind="donation", price=500),
    )
    diet = services.add_question(
        summit.pk,
        services.QuestionSpec(
            label="Dietary needs",
            type="select",
            required=True,
            options=("None", "Vegetarian", "Vegan", "Gluten-free"),
        ),
    )
    services.add_question(summit.pk, services.QuestionSpec(label="Company", type="text"))
    services.add_promo_code(
        summit.pk, services.PromoSpec(code="EARLY", percent_off=20, max_uses=100)
    )
    ada = Member.objects.get(program=program, contact__email=ADA.email)
    adjust_points(ada.pk, points=4000, reason="Speaker prize")  # she pays her ticket in points
    check_out(
        CheckoutIn(
            event_id=summit.pk,
            buyer=ADA,
            attendees=(AttendeeIn(ADA, (LineIn(general.pk),), (AnswerIn(diet.pk, "Vegetarian"),)),),
            promo_code="EARLY",
            payment=PaymentIn("wallet", member_id=ada.pk),
        )
    )


def _meetup(program: Program, day: datetime) -> None:
    meetup = services.create_event(
        services.EventSpec(
            name="Community meetup: loyalty in practice",
            starts_at=day,
            ends_at=day + timedelta(hours=2),
            timezone="America/Los_Angeles",
            currency="USD",
            capacity=24,
            venue="Northwind HQ, Seattle",
            program_id=program.pk,
            attendance_points=300,
        )
    )
    standard = services.add_item(
        meetup.pk, services.ItemSpec(name="Standard", kind="ticket", price=0, capacity=20)
    )
    services.add_item(
        meetup.pk, services.ItemSpec(name="Speaker", kind="ticket", price=0, capacity=4)
    )
    for i in range(20):  # every standard ticket taken
        guest = PersonIn(f"Guest{i:02d}", "Example", f"guest{i:02d}@meetup.example")
        check_out(
            CheckoutIn(
                event_id=meetup.pk,
                buyer=guest,
                attendees=(AttendeeIn(guest, (LineIn(standard.pk),)),),
            )
        )
    for person in (
        PersonIn("Katherine", "Johnson", "kj@example.com"),
        PersonIn("Alan", "Turing", "alan.turing@example.org"),
    ):
        waitlist.join_waitlist(meetup.pk, standard.pk, person)
