"""Documents sent with a registration: the ticket's QR code and a calendar entry (.ics).

Pure functions on plain values, so the worker can build them for an email attachment and a
page can render them, neither touching the models.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import segno

if TYPE_CHECKING:
    from tessera.events.models import Event

PRODID = "-//Tessera//Events//EN"
# Medium error correction survives a scratched phone screen or a smudged print while
# keeping a signed code (tessera.events.tickets) to a version 7 symbol; segno raises it
# further when that costs no extra modules. The quiet zone is 2 modules: emails and pages
# put the code on a white background, which adds to it.
QR_ERROR = "m"
QR_BORDER = 2


@dataclass(frozen=True)
class CalendarEvent:
    """One attendee's calendar entry for one event."""

    event_id: str
    attendee_id: str
    name: str
    starts_at: datetime  # aware
    ends_at: datetime  # aware, after starts_at
    timezone: str  # IANA name, e.g. "Europe/Berlin": the times are shown in it
    venue: str
    description: str
    url: str = ""
    organizer_name: str = ""
    organizer_email: str = ""
    # Raise it when a changed event is sent again: clients replace the entry with the same
    # UID only if the sequence grew.
    sequence: int = 0

    @classmethod
    def of(cls, event: Event, attendee_id: str, url: str = "") -> CalendarEvent:
        """The calendar entry of ``event``; ``attendee_id`` makes its UID one per ticket."""
        return cls(
            event_id=event.pk, attendee_id=attendee_id, name=event.name,
            starts_at=event.starts_at, ends_at=event.ends_at, timezone=event.timezone,
            venue=event.venue, description=event.description, url=url,
        )  # fmt: skip


def qr_png(code: str, *, scale: int = 6) -> bytes:
    """The code as a PNG QR symbol, ``scale`` pixels per module."""
    out = io.BytesIO()
    _qr(code).save(out, kind="png", scale=scale, border=QR_BORDER)
    return out.getvalue()


def qr_svg(code: str, *, scale: int = 4) -> str:
    """The code as an inline ``<svg>`` element (no XML declaration), for HTML pages."""
    return str(_qr(code).svg_inline(scale=scale, border=QR_BORDER))


def _qr(code: str) -> segno.QRCode:
    # micro=False: segno would pick a Micro QR for short input, which phone cameras and
    # most door scanners do not read.
    return segno.make(code, error=QR_ERROR, micro=False)


def event_ics(e: CalendarEvent, *, now: datetime | None = None) -> bytes:
    """An iCalendar file (METHOD:PUBLISH) with the event and its time zone definition.

    ``now`` is the DTSTAMP (default: the current time), passed by tests for stable output.
    """
    tz = _zone(e.timezone)
    if e.starts_at.tzinfo is None or e.ends_at.tzinfo is None:
        raise ValueError("starts_at and ends_at must be timezone-aware")
    if e.ends_at <= e.starts_at:
        raise ValueError("ends_at must be after starts_at")

    event = icalendar.Event()
    # Stable per attendee, so a resent confirmation updates the entry instead of adding one.
    event.add("uid", f"{e.event_id}-{e.attendee_id}@tessera")
    event.add("dtstamp", (now or datetime.now(UTC)).astimezone(UTC))
    # In the event's own zone (TZID + VTIMEZONE), so the entry follows the venue's clock
    # across a DST change and shows as local time to people travelling to it.
    event.add("dtstart", e.starts_at.astimezone(tz))
    event.add("dtend", e.ends_at.astimezone(tz))
    event.add("summary", e.name)
    event.add("location", e.venue)
    event.add("description", e.description)
    event.add("sequence", e.sequence)
    event.add("status", "CONFIRMED")
    if e.url:
        event.add("url", e.url)
    if e.organizer_email:
        organizer = icalendar.vCalAddress(f"mailto:{e.organizer_email}")
        if e.organizer_name:
            organizer.params["cn"] = icalendar.vText(e.organizer_name)
        event.add("organizer", organizer)

    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("method", "PUBLISH")
    cal.add_component(event)
    # The VTIMEZONE for the TZID above, covering the year around the event only: the default
    # span (1970-2038) is kilobytes of transitions and misses events after 2037.
    cal.add_missing_timezones(
        first_date=(e.starts_at - timedelta(days=366)).date(),
        last_date=(e.ends_at + timedelta(days=366)).date(),
    )
    return bytes(cal.to_ical())


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone: {name!r}") from exc
