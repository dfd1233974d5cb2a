"""Check-in at the door: by the signed code in the ticket's QR, or by attendee id.

The code's signature proves it is ours without the database (a forged one is
``invalid_code``); the attendee's row decides the rest, under its lock: a cancelled ticket
is refused, a second scan answers when the first was. Checking in credits the event's
attendance points to the attendee's membership of the event's program, once (enrolling
them if they are not a member yet: attending is how many people join).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from tessera.core.errors import Conflict, NotFound, ValidationFailed
from tessera.crm.services import record_timeline
from tessera.events.lock_objects import lock_attendee
from tessera.events.models import Attendee
from tessera.events.tickets import InvalidTicketCode, verify_ticket
from tessera.loyalty.models import WalletTransaction
from tessera.loyalty.programs import enroll_member
from tessera.loyalty.wallet import move_points

A = Attendee.Status


class CheckInRefused(Conflict):
    title = "Check-in refused"


class InvalidCode(ValidationFailed):
    code = "invalid_code"
    title = "The ticket code is not valid"


@dataclass(frozen=True)
class CheckedIn:
    attendee_id: str
    checked_in_at: datetime
    points_earned: int


def check_in_code(code: str, *, event_id: str | None = None) -> CheckedIn:
    try:
        claim = verify_ticket(code)
    except InvalidTicketCode as exc:
        raise InvalidCode(
            "This code was not issued by us.",
            errors=[{"field": "code", "message": "is not a valid ticket code"}],
        ) from exc
    if event_id and claim.event_id != event_id:
        raise CheckInRefused(
            "This ticket is for another event.", code="wrong_event", event_id=claim.event_id
        )
    return check_in(claim.attendee_id, expect_event=claim.event_id)


@transaction.atomic
def check_in(attendee_id: str, *, expect_event: str | None = None) -> CheckedIn:
    attendee = lock_attendee(attendee_id, "event__program", "contact")
    if expect_event and attendee.event_id != expect_event:
        raise NotFound(f"No attendee {attendee_id} at this event")
    if attendee.status == A.CHECKED_IN:
        raise CheckInRefused(
            f"Already checked in at {attendee.checked_in_at:%Y-%m-%d %H:%M %Z}.",
            code="already_checked_in",
            checked_in_at=attendee.checked_in_at.isoformat() if attendee.checked_in_at else None,
        )
    if attendee.status == A.CANCELLED:
        raise CheckInRefused("This ticket was cancelled.", code="cancelled")
    if attendee.status != A.REGISTERED:
        raise CheckInRefused(f"The attendee is {attendee.status}.", code="not_registered")
    attendee.status = A.CHECKED_IN
    attendee.checked_in_at = timezone.now()
    attendee.save(update_fields=["status", "checked_in_at"])
    points = _attendance_points(attendee)
    record_timeline(
        attendee.contact,
        kind="check_in",
        obj=attendee,
        summary=f"Checked in at {attendee.event.name}",
        data={"event_id": attendee.event_id, "points": points},
    )
    return CheckedIn(attendee.pk, attendee.checked_in_at, points)


def _attendance_points(attendee: Attendee) -> int:
    event = attendee.event
    if event.program is None or event.attendance_points <= 0:
        return 0
    member, _ = enroll_member(event.program.pk, contact_id=attendee.contact_id)
    # The ledger reference makes it once per attendee, however often this runs.
    move_points(
        member,
        type=WalletTransaction.Type.POINTS_EARNED,
        points=event.attendance_points,
        reference=f"attendance:{attendee.pk}",
        counter=event.program.issuance_account,
        object_type="attendee",
        object_id=attendee.pk,
        detail={"event": event.name, "event_id": event.pk, "reason": "attended"},
        expires=True,
    )
    return event.attendance_points
