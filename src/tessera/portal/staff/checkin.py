"""/staff/check-in: at the door, a ticket's code in, one unmistakable answer out.

The answer comes from the check-in service (``events.checkin``); this page only says it
big. An htmx request gets the answer alone (the page stays, the camera keeps running); a
plain form POST gets the whole page, so the door works without JavaScript too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from tessera.core.errors import ProblemError
from tessera.events.checkin import CheckedIn, check_in_code
from tessera.events.models import Attendee, Event
from tessera.events.tickets import InvalidTicketCode, verify_ticket
from tessera.portal.identity import staff_page
from tessera.portal.policy import adding
from tessera.portal.staff.forms import CheckInForm
from tessera.portal.submissions import attempt

# The vendored scanner decodes in a Web Worker made from a blob: URL (where the browser
# has no BarcodeDetector). Only this page allows that.
SCANNER_POLICY = {"worker-src": ["'self'", "blob:"]}


@dataclass(frozen=True)
class Result:
    tone: str  # "ok", "warn" or "bad": the colour of the answer
    headline: str
    detail: str = ""
    attendee: Attendee | None = None
    ticket_event: Event | None = None  # a wrong event's ticket: the event it is for
    at: datetime | None = None


def door_events() -> list[Event]:
    return list(Event.objects.filter(status=Event.Status.LIVE).order_by("starts_at", "id")[:100])


def _attendee(attendee_id: str) -> Attendee | None:
    return (
        Attendee.objects.select_related("contact", "ticket", "event").filter(pk=attendee_id).first()
    )


def _ticket_holder(code: str) -> Attendee | None:
    """Whose ticket a genuine but refused code is, to show the person at the door."""
    try:
        return _attendee(verify_ticket(code).attendee_id)
    except InvalidTicketCode:
        return None


def _refusal(code: str, error: ProblemError) -> Result:
    if error.code in ("invalid_code", "not_found"):
        return Result("bad", _("Not a valid ticket"), _("This code is not a ticket of ours."))
    holder = _ticket_holder(code)
    if error.code == "already_checked_in":
        at = parse_datetime(str(error.extra.get("checked_in_at") or ""))
        return Result("warn", _("Already checked in"), attendee=holder, at=at)
    if error.code == "cancelled":
        return Result("bad", _("Cancelled"), _("This ticket was cancelled."), attendee=holder)
    if error.code == "wrong_event":
        event = Event.objects.filter(pk=error.extra.get("event_id")).first()
        return Result(
            "bad", _("Wrong event"), _("This ticket is for another event."), holder, event
        )
    if error.code == "not_registered":
        return Result("warn", _("Not registered"), error.detail, attendee=holder)
    return Result("bad", str(error.title), error.detail)


def check(code: str, event_id: str) -> Result:
    outcome = attempt(lambda: check_in_code(code, event_id=event_id or None))
    if outcome.error is not None:
        return _refusal(code, outcome.error)
    done: CheckedIn | None = outcome.value
    assert done is not None  # noqa: S101 - attempt gives a value or an error
    detail = _("%(points)s points earned.") % {"points": done.points_earned}
    return Result(
        "ok",
        _("Checked in"),
        detail if done.points_earned else "",
        _attendee(done.attendee_id),
        at=done.checked_in_at,
    )


@staff_page
@adding(SCANNER_POLICY)
def check_in_page(request: HttpRequest) -> HttpResponse:
    events = door_events()
    result: Result | None = None
    if request.method == "POST":
        form = CheckInForm(request.POST, events=events)
        if form.is_valid():
            result = check(form.cleaned_data["code"], form.cleaned_data["event"])
            # The next ticket starts from an empty field, at the same door.
            form = CheckInForm(initial={"event": form.cleaned_data["event"]}, events=events)
        elif request.headers.get("HX-Request"):
            first = next(iter(form.errors.values()))[0]
            result = Result("warn", _("Check the form"), str(first))
    else:
        form = CheckInForm(initial={"event": request.GET.get("event", "")}, events=events)
    context = {"section": "staff", "form": form, "result": result}
    if request.headers.get("HX-Request"):
        return render(request, "portal/staff/checkin_result.html", context)
    return render(request, "portal/staff/checkin.html", context)
