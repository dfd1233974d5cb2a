"""Normalisation for duplicate matching: one canonical form per kind of value.

Comparators and blocking keys both build on these functions, so a pair the comparators
call identical always gets identical keys. Everything here is pure and deterministic
(except the admin name variants, which carry a generation number so that caches never
serve a result computed from an older variant list).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import urlsplit

import phonenumbers
from cleanco import basename
from cleanco.clean import normalized, strip_punct, strip_tail
from doublemetaphone import doublemetaphone
from nicknames import NickNamer

from tessera.crm.matching import streets

__all__ = [
    "city_key",
    "company_key",
    "first_initials",
    "fold",
    "last_name_phonetics",
    "name_tokens",
    "name_variants",
    "normalize_city",
    "normalize_company",
    "normalize_email",
    "normalize_phone",
    "normalize_postal",
    "normalize_street",
    "phone_e164",
    "phone_key",
    "phone_sections",
    "phonetic_codes",
    "postal_key",
    "set_extra_variants",
    "split_us_zip",
    "street_sections",
    "variants_generation",
    "website_domain",
    "words",
]

CACHE_SIZE = 100_000

# Letters NFKD leaves whole (they are not "letter + accent"), so stripping combining
# marks alone would keep "Søren" and "Soren" apart.
_LETTER_MAP = str.maketrans(
    {
        "ß": "ss",
        "ẞ": "ss",
        "ø": "o",
        "Ø": "o",
        "æ": "ae",
        "Æ": "ae",
        "œ": "oe",
        "Œ": "oe",
        "ł": "l",
        "Ł": "l",
        "đ": "d",
        "Đ": "d",
        "ð": "d",
        "Ð": "d",
        "þ": "th",
        "Þ": "th",
        "\u0131": "i",  # dotless i
    }
)
_WHITESPACE = re.compile(r"\s+")
# Apostrophes and dots join a word rather than split it: "O'Brien", "A.M.D.", "St.".
_JOINERS = re.compile("[.'`\u2019]")
_WORD = re.compile(r"[^\W_]+")
_DIGITS = re.compile(r"\d")
_NON_DIGITS = re.compile(r"\D")


@lru_cache(maxsize=CACHE_SIZE)
def fold(text: str) -> str:
    """Case-, accent- and spacing-insensitive form: "  José  MÜLLER " -> "jose muller"."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_LETTER_MAP))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    # casefold can introduce new decomposable characters, so map once more afterwards.
    folded = stripped.casefold().translate(_LETTER_MAP)
    return _WHITESPACE.sub(" ", folded).strip()


def words(text: str) -> list[str]:
    """Letter/digit tokens of fold(), with apostrophes and dots joining ("A.M.D." -> amd)."""
    return _WORD.findall(_JOINERS.sub("", fold(text)))


@lru_cache(maxsize=CACHE_SIZE)
def _name_tokens(text: str) -> tuple[str, ...]:
    # Dots separate here ("J.R." is two initials), apostrophes still join ("O'Brien").
    return tuple(_WORD.findall(fold(text).replace("'", "").replace("\u2019", "")))


def name_tokens(text: str) -> list[str]:
    return list(_name_tokens(text))


# --- email / website ---------------------------------------------------------------


def normalize_email(s: str) -> str:
    return s.strip().lower()


@lru_cache(maxsize=CACHE_SIZE)
def website_domain(s: str) -> str:
    """Bare host of a URL or domain: "https://www.Acme.com:443/about" -> "acme.com"."""
    text = s.strip().lower()
    if not text:
        return ""
    # Without a scheme urlsplit reads the host as a path, so give it an empty authority.
    if "://" not in text:
        text = "//" + text.removeprefix("//")
    try:
        host = urlsplit(text).hostname or ""
    except ValueError:
        host = ""
    host = host.strip(".")
    return host.removeprefix("www.")


# --- phone -------------------------------------------------------------------------


# The numbers ``phone_e164`` read, by their E.164 form: matching compares and keys a
# phone in that form, and parsing it again (tens of microseconds) would double the cost of
# every new number. Emptied when full, like a cache.
_e164_numbers: dict[str, phonenumbers.PhoneNumber] = {}


@lru_cache(maxsize=CACHE_SIZE)
def _parse_phone(s: str, region: str) -> phonenumbers.PhoneNumber | None:
    known = _e164_numbers.get(s)
    if known is not None:
        return known
    try:
        return phonenumbers.parse(s, region)
    except phonenumbers.NumberParseException:
        return None


@lru_cache(maxsize=CACHE_SIZE)
def phone_e164(s: str, region: str) -> str:
    """E.164 when the number read in ``region`` is a possible number, else ""."""
    if s in _e164_numbers:
        return s  # already the E.164 form of a possible number, whatever the region
    number = _parse_phone(s, region)
    if number is None or not phonenumbers.is_possible_number(number):
        return ""
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if len(_e164_numbers) >= CACHE_SIZE:
        _e164_numbers.clear()
    _e164_numbers.setdefault(e164, number)
    return e164


@lru_cache(maxsize=CACHE_SIZE)
def normalize_phone(s: str, region: str = "US") -> str:
    """E.164 when the number parses as a possible number, else just its digits."""
    return phone_e164(s, region) or _NON_DIGITS.sub("", s)


def _split_positional(digits: str) -> tuple[str, str, str, str]:
    # Read from the right, NANP-style: the last four, three before them, three before
    # those, and whatever leads is the country code.
    return digits[:-10], digits[-10:-7], digits[-7:-4], digits[-4:]


@lru_cache(maxsize=CACHE_SIZE)
def phone_sections(s: str, region: str = "US") -> tuple[str, str, str, str]:
    """(country code, area code, next digits, last four) for section-weighted comparison."""
    number = _parse_phone(s, region)
    if number is None:
        digits = _NON_DIGITS.sub("", s)
        return _split_positional(digits) if digits else ("", "", "", "")
    country = str(number.country_code or "")
    nsn = phonenumbers.national_significant_number(number)
    if number.country_code == 1:
        _, area, middle, last4 = _split_positional(nsn)
        return country, area, middle, last4
    # Outside NANP the area/trunk prefix varies in length; phonenumbers knows it for
    # geographic numbers and the destination code (e.g. the mobile prefix) for others.
    area_len = phonenumbers.length_of_geographical_area_code(number)
    if not area_len:
        area_len = phonenumbers.length_of_national_destination_code(number)
    if not area_len:
        area_len = max(0, len(nsn) - 7)
    area_len = max(0, min(area_len, len(nsn) - 4))
    return country, nsn[:area_len], nsn[area_len:-4], nsn[-4:]


def phone_key(phone: str, region: str = "US") -> str:
    """Normalised phone without its last four digits; "" if too short to narrow anything."""
    normalized = normalize_phone(phone, region)
    if len(_DIGITS.findall(normalized)) < 7:
        return ""
    return normalized[:-4]


# --- postal code -------------------------------------------------------------------

_POSTAL_DROP = re.compile(r"[\s\-]+")
_US_ZIP = re.compile(r"(\d{5})(\d{4})?")


def normalize_postal(s: str) -> str:
    return _POSTAL_DROP.sub("", fold(s)).upper()


def split_us_zip(normalized: str) -> tuple[str, str] | None:
    """(first five, plus-four or "") when a normalised code has the shape of a US ZIP."""
    match = _US_ZIP.fullmatch(normalized)
    if match is None:
        return None
    return match.group(1), match.group(2) or ""


def postal_key(postal: str) -> str:
    normalized = normalize_postal(postal)
    zip_parts = split_us_zip(normalized)
    return zip_parts[0] if zip_parts else normalized


# --- company -----------------------------------------------------------------------

_STANDALONE_AMPERSAND = re.compile(r"\s&\s")
# The last word of every legal term cleanco knows ("inc", "kg" of "gmbh & co kg", ...).
_LEGAL_TERM_ENDS = frozenset(parts[-1] for _, parts in basename.keywords["terms"])


def _basename(text: str) -> str:
    """cleanco's ``basename``, without its walk through every legal term (a few hundred)
    when the name's last word ends none of them, as is the case for most names: then it
    only trims trailing punctuation."""
    name = strip_tail(text)
    words = [strip_punct(w) for w in normalized(name).split()]
    if words and words[-1] in _LEGAL_TERM_ENDS:
        return str(basename(text))
    return str(strip_tail(" ".join(name.split())))


@lru_cache(maxsize=CACHE_SIZE)
def normalize_company(s: str) -> str:
    """Folded name with legal suffixes and punctuation removed: "ACME, Inc." -> "acme"."""
    text = _STANDALONE_AMPERSAND.sub(" and ", fold(s))
    # cleanco strips one suffix per call ("Acme Co. Ltd." -> "Acme Co."), so repeat
    # until stable; a name that is nothing but a suffix ("Inc") is kept as it is.
    for _ in range(3):
        stripped = _basename(text).strip()
        if not stripped or stripped == text:
            break
        text = stripped
    words = _WORD.findall(_JOINERS.sub("", text.replace("&", "")))
    if len(words) > 1 and words[0] == "the":
        words = words[1:]
    return " ".join(words)


def company_key(company: str) -> str:
    """Salesforce's "Company (2,5)": first five characters of the first two words."""
    return "".join(word[:5] for word in normalize_company(company).split()[:2])


# --- city --------------------------------------------------------------------------

_CITY_ABBREVIATIONS = {"st": "saint", "ste": "sainte", "ft": "fort", "mt": "mount"}


@lru_cache(maxsize=CACHE_SIZE)
def normalize_city(s: str) -> str:
    """Folded city with punctuation dropped and St./Ft./Mt. spelled out ("St. Louis")."""
    return " ".join(_CITY_ABBREVIATIONS.get(word, word) for word in words(s))


def city_key(city: str) -> str:
    return normalize_city(city).replace(" ", "")


# --- street ------------------------------------------------------------------------

_STREET_TOKEN = re.compile(r"#|[^\W_]+")


@lru_cache(maxsize=CACHE_SIZE)
def street_sections(s: str) -> tuple[str, str, str, str]:
    """(number, name, suffix, unit).

    "123 N. Main Street, Apt 4B" -> ("123", "n main", "st", "4b"). A suffix one typo from
    a long spelling counts as that suffix ("Atreet" -> "st"), and one typed onto the name
    is split off it ("Hawkenstreet" -> "hawken", "st"); ``streets`` has the rules.
    """
    return streets.sections(_STREET_TOKEN.findall(_JOINERS.sub("", fold(s))))


def normalize_street(s: str) -> str:
    number, name, suffix, unit = street_sections(s)
    parts = [number, name, suffix, f"#{unit}" if unit else ""]
    return " ".join(part for part in parts if part)


# --- names -------------------------------------------------------------------------

_nicknamer = NickNamer()
_extras_lock = threading.Lock()
_extra_variants: dict[str, frozenset[str]] = {}
# Part of every cache key that depends on the extras, so a result computed from an older
# list (possibly by another thread while the list was being swapped) is never served.
_extras_generation = 0


def _name_key(first_name: str) -> str:
    return " ".join(_name_tokens(first_name))


@lru_cache(maxsize=CACHE_SIZE)
def _nicknames(name: str) -> frozenset[str]:
    return frozenset(_nicknamer.nicknames_of(name))


@lru_cache(maxsize=CACHE_SIZE)
def _canonicals(name: str) -> frozenset[str]:
    return frozenset(_nicknamer.canonicals_of(name))


@lru_cache(maxsize=CACHE_SIZE)
def _variants(name: str, generation: int) -> frozenset[str]:
    extras = _extra_variants.get(name, frozenset())
    return frozenset({name}) | _nicknames(name) | _canonicals(name) | extras


def name_variants(first_name: str) -> frozenset[str]:
    """The folded name, its nicknames, the names it is a nickname of, and admin variants."""
    name = _name_key(first_name)
    if not name:
        return frozenset()
    return _variants(name, _extras_generation)


def variants_generation() -> int:
    """Changes whenever the admin name variants do: part of the key of any cache of values
    derived from first names."""
    return _extras_generation


def set_extra_variants(pairs: Iterable[tuple[str, str]]) -> None:
    """Replace the admin-added name variants; each pair works in both directions."""
    global _extra_variants, _extras_generation
    built: dict[str, set[str]] = {}
    for left, right in pairs:
        a, b = _name_key(left), _name_key(right)
        if not a or not b or a == b:
            continue
        built.setdefault(a, set()).add(b)
        built.setdefault(b, set()).add(a)
    with _extras_lock:
        _extra_variants = {name: frozenset(names) for name, names in built.items()}
        _extras_generation += 1
    _variants.cache_clear()
    _first_initials.cache_clear()


@lru_cache(maxsize=CACHE_SIZE)
def _first_initials(name: str, generation: int) -> frozenset[str]:
    related = {name} | _canonicals(name) | _extra_variants.get(name, frozenset())
    return frozenset(n[0] for n in related if n)


def first_initials(first_name: str) -> frozenset[str]:
    """Blocking forms of a first name: its initial and those of the names it abbreviates.

    "Bob" -> {"b", "r"} so that it shares a key with "Robert"; admin variants count too,
    or a variant pair with different initials ("Xander"/"Alexander") could never meet.
    """
    name = _name_key(first_name)
    if not name:
        return frozenset()
    return _first_initials(name, _extras_generation)


@lru_cache(maxsize=CACHE_SIZE)
def phonetic_codes(text: str) -> frozenset[str]:
    """Non-empty double-metaphone codes of a name read as one word ("Mc Donald")."""
    letters = "".join(_name_tokens(text))
    if not letters:
        return frozenset()
    return frozenset(code for code in doublemetaphone(letters) if code)


def last_name_phonetics(last_name: str) -> frozenset[str]:
    return phonetic_codes(last_name)
