"""Programs and enrolment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from django.db import IntegrityError, transaction
from django.db.models.functions import Lower

from tessera.core.errors import ValidationFailed
from tessera.core.ids import new_id
from tessera.core.lookup import get_by_id
from tessera.core.money import POINTS, validate_currency
from tessera.crm.inputs import ContactInput
from tessera.crm.services import contact_for, get_contact, resolve_person
from tessera.ledger.services import get_or_create_account
from tessera.loyalty.models import Member, Program


@dataclass(frozen=True)
class ProgramSpec:
    name: str
    points_per_unit: int
    currency: str  # what credit is bought in
    low_balance_threshold: int = 0
    points_expire_after_days: int | None = None
    attendance_points: int | None = None
    admin_email: str | None = None


class Enrolment(NamedTuple):
    """A membership, and whether this call made it. A tuple, so ``member, created = ...``
    reads as it always has."""

    member: Member
    created: bool


@transaction.atomic
def create_program(spec: ProgramSpec) -> Program:
    try:
        currency = validate_currency(spec.currency)
    except ValueError as exc:
        raise ValidationFailed.field("currency", str(exc)) from exc
    if currency == POINTS:
        raise ValidationFailed.field("currency", "is the currency credit is bought in, not PTS")
    program_id = new_id("prg")
    program = Program.objects.create(
        id=program_id,
        name=spec.name,
        points_per_unit=spec.points_per_unit,
        currency=currency,
        low_balance_threshold=spec.low_balance_threshold,
        points_expire_after_days=spec.points_expire_after_days,
        attendance_points=spec.attendance_points or 0,
        admin_email=spec.admin_email or "",
        issuance_account=get_or_create_account(
            f"program:{program_id}:issued", name=f"{spec.name}: points issued",
            asset=POINTS, allow_negative=True,
        ),
        redemption_account=get_or_create_account(
            f"program:{program_id}:redeemed", name=f"{spec.name}: points redeemed",
            asset=POINTS, allow_negative=True,
        ),
    )  # fmt: skip
    return program


def get_program(program_id: str) -> Program:
    return get_by_id(Program, program_id, "program")


def get_member(member_id: str) -> Member:
    return get_by_id(
        Member.objects.select_related("program__redemption_account", "contact", "wallet"),
        member_id,
        "member",
    )


def _member_by_email(program: Program, email: str | None) -> Member | None:
    """The program's member whose contact has this email (stored lower-cased), if any;
    the oldest, should two contacts share it."""
    address = str(email or "").strip().lower()
    if not address:
        return None
    return (
        Member.objects.annotate(email_lower=Lower("contact__email"))
        .filter(program=program, email_lower=address)
        .order_by("created_at", "id")
        .first()
    )


@transaction.atomic
def enroll_member(
    program_id: str, *, contact: ContactInput | None = None, contact_id: str | None = None
) -> Enrolment:
    """Enrol a person: by ``contact_id``, or found or created from ``contact`` details via
    duplicate matching. Enrolling someone already in the program returns their membership
    (second value False)."""
    program = get_program(program_id)
    if contact_id:
        person = get_contact(contact_id)
    elif contact is not None:
        # A member already enrolled under this email is this person, whatever fuzzy
        # matching would say of the name (a newer lead, a nickname): same membership.
        by_email = _member_by_email(program, contact.email)
        if by_email is not None:
            return Enrolment(by_email, False)
        person = contact_for(resolve_person(contact))
    else:
        raise ValidationFailed.field("contact", "send contact details or a contact_id")
    existing = Member.objects.filter(program=program, contact=person).first()
    if existing is not None:
        return Enrolment(existing, False)
    member_id = new_id("mem")
    wallet = get_or_create_account(
        f"wallet:{member_id}", name=f"Wallet of {person} ({program.name})", asset=POINTS
    )
    try:
        with transaction.atomic():
            member = Member.objects.create(
                id=member_id, program=program, contact=person, wallet=wallet
            )
    except IntegrityError:
        # Enrolled concurrently by another request: theirs stands.
        return Enrolment(Member.objects.get(program=program, contact=person), False)
    from tessera.crm.services import record_timeline

    record_timeline(person, kind="member_enrolled", obj=member, summary=f"Joined {program.name}")
    return Enrolment(member, True)
