"""Ticket documents: the QR image carries the code's symbol, the .ics reads back as sent."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
import segno
from PIL import Image

from tessera.events.documents import CalendarEvent, event_ics, qr_png, qr_svg

CODE = "T1.EVT-01JD3Z8Q6W1X2Y3Z4A5B6C7D8E.ATT-01JD3Z9R7X2Y3Z4A5B6C7D8E9F." + "A" * 103
BERLIN = ZoneInfo("Europe/Berlin")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def calendar_event(**changes: object) -> CalendarEvent:
    fields: dict[str, object] = {
        "event_id": "evt_01JD3Z8Q6W1X2Y3Z4A5B6C7D8E",
        "attendee_id": "att_01JD3Z9R7X2Y3Z4A5B6C7D8E9F",
        "name": "Tessera Summit",
        "starts_at": datetime(2026, 6, 12, 16, 30, tzinfo=UTC),  # 18:30 in Berlin
        "ends_at": datetime(2026, 6, 12, 21, 0, tzinfo=UTC),
        "timezone": "Europe/Berlin",
        "venue": "Kulturbrauerei, Berlin",
        "description": "Doors open at 18:00.",
    }
    fields.update(changes)
    return CalendarEvent(**fields)  # type: ignore[arg-type]


def only_event(ics: bytes) -> icalendar.Component:
    (event,) = icalendar.Calendar.from_ical(ics).walk("VEVENT")
    return event


def test_qr_png_is_a_png() -> None:
    assert qr_png(CODE).startswith(PNG_SIGNATURE)


def test_qr_png_pixels_are_the_symbol_of_the_code() -> None:
    scale, border = 3, 2
    image = Image.open(io.BytesIO(qr_png(CODE, scale=scale))).convert("L")
    pixels, width = image.tobytes(), image.size[0]
    matrix = segno.make(CODE, error="m", micro=False).matrix
    # Sample the centre of every module: dark pixels where the symbol has dark modules.
    read = tuple(
        bytearray(
            pixels[((border + y) * scale + 1) * width + (border + x) * scale + 1] < 128
            for x in range(len(row))
        )
        for y, row in enumerate(matrix)
    )
    assert read == matrix


def test_qr_png_has_a_two_module_quiet_zone() -> None:
    scale = 3
    image = Image.open(io.BytesIO(qr_png(CODE, scale=scale)))
    modules = segno.make(CODE, error="m", micro=False).symbol_size(border=0)[0]
    assert image.size == ((modules + 4) * scale, (modules + 4) * scale)


def test_qr_is_never_a_micro_qr_even_for_short_input() -> None:
    # Phones do not read Micro QR; segno picks it for short input unless told not to.
    image = Image.open(io.BytesIO(qr_png("T1", scale=1)))
    assert image.size == (21 + 4, 21 + 4)  # version 1: 21 modules, plus the border


def test_qr_svg_is_an_inline_svg_element() -> None:
    assert re.match(r"<svg [^>]*>", qr_svg(CODE)) is not None


def test_ics_start_is_in_the_event_time_zone() -> None:
    start = only_event(event_ics(calendar_event()))["DTSTART"]
    assert start.params["TZID"] == "Europe/Berlin"


def test_ics_start_reads_back_as_the_same_instant_in_local_time() -> None:
    start = only_event(event_ics(calendar_event())).decoded("DTSTART")
    assert start == datetime(2026, 6, 12, 18, 30, tzinfo=BERLIN)


def test_ics_start_is_written_as_the_venue_wall_clock() -> None:
    assert b"DTSTART;TZID=Europe/Berlin:20260612T183000" in event_ics(calendar_event())


def test_ics_carries_the_time_zone_definition_its_times_use() -> None:
    calendar = icalendar.Calendar.from_ical(event_ics(calendar_event()))
    assert [tz["TZID"] for tz in calendar.walk("VTIMEZONE")] == ["Europe/Berlin"]


def test_ics_time_zone_covers_an_event_after_2037() -> None:
    starts = datetime(2045, 7, 1, 16, tzinfo=UTC)
    ics = event_ics(calendar_event(starts_at=starts, ends_at=starts + timedelta(hours=2)))
    assert icalendar.Calendar.from_ical(ics).get_missing_tzids() == set()


def test_ics_unicode_name_round_trips() -> None:
    name = "Jahrestreffen — Ünïcødé 会议 🎉 " * 4  # long enough to be folded across lines
    summary = only_event(event_ics(calendar_event(name=name)))["SUMMARY"]
    assert str(summary) == name


def test_ics_uid_is_stable_per_event_and_attendee() -> None:
    first = only_event(event_ics(calendar_event(), now=datetime(2026, 1, 1, tzinfo=UTC)))
    again = only_event(event_ics(calendar_event(), now=datetime(2026, 2, 1, tzinfo=UTC)))
    assert first["UID"] == again["UID"]


def test_ics_uid_differs_for_another_attendee() -> None:
    first = only_event(event_ics(calendar_event()))
    other = only_event(event_ics(calendar_event(attendee_id="att_01JD3ZA0000000000000000000")))
    assert first["UID"] != other["UID"]


def test_ics_calendar_is_published_by_tessera() -> None:
    calendar = icalendar.Calendar.from_ical(event_ics(calendar_event()))
    assert calendar["PRODID"] == "-//Tessera//Events//EN"
    assert calendar["VERSION"] == "2.0"
    assert calendar["METHOD"] == "PUBLISH"


def test_ics_has_venue_and_description() -> None:
    event = only_event(event_ics(calendar_event()))
    assert event["LOCATION"] == "Kulturbrauerei, Berlin"
    assert event["DESCRIPTION"] == "Doors open at 18:00."


def test_ics_url_and_organizer_are_included_when_given() -> None:
    event = only_event(
        event_ics(
            calendar_event(
                url="https://tessera.example/e/summit",
                organizer_name="Tessera Events",
                organizer_email="events@tessera.example",
            )
        )
    )
    assert str(event["URL"]) == "https://tessera.example/e/summit"
    assert str(event["ORGANIZER"]) == "mailto:events@tessera.example"
    assert event["ORGANIZER"].params["CN"] == "Tessera Events"


def test_ics_leaves_out_url_and_organizer_when_not_given() -> None:
    event = only_event(event_ics(calendar_event()))
    assert "URL" not in event
    assert "ORGANIZER" not in event


def test_ics_refuses_a_naive_start() -> None:
    with pytest.raises(ValueError, match="aware"):
        event_ics(calendar_event(starts_at=datetime(2026, 6, 12, 18, 30)))  # noqa: DTZ001


def test_ics_refuses_an_end_before_the_start() -> None:
    event = calendar_event()
    with pytest.raises(ValueError, match="after"):
        event_ics(calendar_event(ends_at=event.starts_at - timedelta(minutes=1)))


def test_ics_refuses_an_unknown_time_zone() -> None:
    with pytest.raises(ValueError, match="time zone"):
        event_ics(calendar_event(timezone="Mars/Olympus_Mons"))
