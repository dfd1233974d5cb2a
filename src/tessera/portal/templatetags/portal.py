"""Money, points and dates in the reader's locale (Babel), for the portal's pages.

The locale is the active language (the member's choice in their profile, else the
browser's), so "1.234,50 €" for a German reader and "€1,234.50" for an American one."""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal
from django import template
from django.utils import timezone, translation

from tessera.core.money import Money

register = template.Library()


def reader_locale() -> Locale:
    return _parsed(translation.to_locale(translation.get_language() or "en-us"))


@lru_cache(maxsize=64)
def _parsed(code: str) -> Locale:
    # Babel parses a locale name on every call it is given one; a wallet page formats a
    # few hundred amounts and dates.
    try:
        return Locale.parse(code)
    except (ValueError, UnknownLocaleError):
        return Locale.parse("en_US")


@register.filter
def money(value: Any, currency: str) -> str:
    if value is None or value == "":
        return ""
    return Money(int(value), currency).format(reader_locale())


@register.filter
def pts(value: Any) -> str:
    """``1234`` -> "1,234 pts"; signed movements keep their sign."""
    if value is None or value == "":
        return ""
    number = int(value)
    text = format_decimal(abs(number), locale=reader_locale())
    sign = "\u2212" if number < 0 else ""  # the minus sign typography uses
    return f"{sign}{text} pts"


@register.filter
def signed_pts(value: Any) -> str:
    number = int(value)
    return ("+" if number > 0 else "") + pts(number)


@register.filter
def when(value: datetime | None, tz: str = "") -> str:
    """A moment as a reader reads it: "Dec 2, 2026, 4:30 PM", in the event's zone if given."""
    if value is None:
        return ""
    zone = tz or timezone.get_current_timezone_name()
    return format_datetime(value, "medium", tzinfo=_zone(zone), locale=reader_locale())


@register.filter
def day(value: date | datetime | None) -> str:
    if value is None:
        return ""
    return format_date(value, "medium", locale=reader_locale())


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(name)
