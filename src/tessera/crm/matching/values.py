"""A record's fields as matching reads them: blanks and placeholders, and phones read in the
record's own region. Comparators, keys and the probabilistic scorer all read values here,
so two records meet on the same reading of each field.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache, lru_cache
from typing import Any

import phonenumbers
from django.conf import settings

from tessera.crm.matching import normalize as n

# What people type into a field they have nothing for. Like a blank, it never matches
# (unless a criterion says match_blank): two records with phone "N/A" are not the same
# person by phone.
PLACEHOLDERS = frozenset(
    {"n/a", "na", "n.a.", "none", "null", "nil", "unknown", "not available", "tbd", "tba"}
)


def field_text(value: Any) -> str:
    """A field's value as text for matching: "" for nothing, a placeholder ("N/A",
    "unknown") or only punctuation ("-", "?"); comparators and keys both read it so."""
    if value is None:
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value).strip()
    if not any(ch.isalnum() for ch in text) or text.casefold() in PLACEHOLDERS:
        return ""
    return text


# --- a record's phone, read in its own region ---------------------------------------------


def _country_key(text: str) -> str:
    # "The Bahamas", "Bosnia & Herzegovina" and "Bosnia and Herzegovina" read the same; a
    # name of nothing else is kept ("AND" is Andorra's alpha-3 code).
    tokens = n.words(text)
    return " ".join([w for w in tokens if w not in ("the", "and")] or tokens)


@cache
def _regions() -> dict[str, str]:
    """Country key -> phone region: CLDR's unambiguous aliases (alpha-3 and numeric codes,
    "UK"), then the English names and the codes themselves, of the regions phonenumbers
    knows (a territory it does not, like Antarctica, reads as no country)."""
    from babel import Locale
    from babel.core import get_global

    supported = phonenumbers.SUPPORTED_REGIONS
    table = {
        _country_key(alias): targets[0]
        for alias, targets in get_global("territory_aliases").items()
        if len(targets) == 1 and targets[0] in supported
    }
    for code, name in Locale("en").territories.items():
        if code in supported:
            table[_country_key(name)] = table[_country_key(code)] = code
    return table


@lru_cache(maxsize=4096)
def country_region(country: str) -> str:
    """The phone region of a free-text country ("de", "DEU", "Germany", "UK" -> "DE", "GB"),
    or "" when it names none."""
    return _regions().get(_country_key(country), "")


def record_region(country: Any) -> str:
    """The region a record's phone is read in: its country's, else TESSERA_DEFAULT_REGION."""
    return _region(country, settings.TESSERA_DEFAULT_REGION)


@lru_cache(maxsize=4096)
def _region(country: Any, default: str) -> str:
    # Not ``field_text``: a country "NA" is Namibia, not a placeholder.
    return country_region(str(country or "")) or country_region(default) or default


def record_phone_e164(phone: Any, country: Any) -> str:
    """What a record stores as ``phone_e164``: its phone in E.164, read in its region, or ""
    when that is not a possible number."""
    return _read_phone(phone, country, settings.TESSERA_DEFAULT_REGION)[0]


def record_phone(phone: Any, country: Any) -> str:
    """A record's phone as comparators and keys read it: E.164 when it is a possible number
    in the record's region, else its text. Each record's own region is applied before two
    meet, so "030 1234567" in Germany and "+49 30 1234567" anywhere are one number."""
    return _read_phone(phone, country, settings.TESSERA_DEFAULT_REGION)[1]


@lru_cache(maxsize=n.CACHE_SIZE)
def _read_phone(phone: Any, country: Any, default: str) -> tuple[str, str]:
    """(E.164 or "", the phone as matching reads it).

    The default region is read from the settings at every call and is part of the cache key,
    so an override (a test's ``settings``) applies at once and never meets a result of the
    old one. Changing it re-keys nothing by itself: records saved before keep the match keys
    and ``phone_e164`` of the old default (comparisons read them with the new one) until
    they are saved again or ``rebuild_match_keys`` runs."""
    text = field_text(phone)
    if not text:
        return "", ""
    e164 = n.phone_e164(text, _region(country, default))
    return e164, e164 or text


def match_text(record: Mapping[str, Any], name: str) -> str:
    """A record's field as matching reads it (the phone in its region, see ``record_phone``)."""
    if name == "phone":
        return record_phone(record.get("phone"), record.get("country"))
    return field_text(record.get(name))
