"""Comparison levels for probabilistic (Fellegi-Sunter) matching.

A field's comparison of two values is not a similarity score but one of a few levels,
checked from the strictest down; the first that applies wins. Each level then carries its
own m and u probability, so the model learns how much "same phone but for one digit" is
worth instead of a threshold saying so. A pair where either value is blank gets
``MISSING``: neither evidence for nor against.

Every field has an exact key (its canonical form). Level 0 is always "the keys are equal"
and a blank key is a missing value, so training can count exact agreement among random
pairs from the keys' frequencies alone, and term-frequency tables are tables of keys.

These run for every candidate of every lookup: whatever depends on one value (keys,
sections, phonetic codes) is cached, and the pairwise work is a few rapidfuzz calls.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA, JaroWinkler

from tessera.crm.matching import normalize as n

__all__ = [
    "ADDRESS_PARTS",
    "CONTACT_FIELDS",
    "FIELD_LEVELS",
    "MISSING",
    "MISSING_LABEL",
    "PERSON_FIELDS",
    "TF_FIELDS",
    "FieldLevels",
    "comparison_vector",
    "field_levels",
    "pack_address",
]

MISSING = -1
MISSING_LABEL = "missing"

_NON_DIGITS = re.compile(r"\D")


@dataclass(frozen=True)
class FieldLevels:
    """How one field's values compare: level labels (index 0 is exact), the exact key and
    the comparison of two non-blank values whose keys differ (returns an index >= 1)."""

    field: str
    labels: tuple[str, ...]
    key: Callable[[str], str]
    compare: Callable[[str, str], int]

    def level(self, a: str, b: str) -> int:
        ka, kb = self.key(a), self.key(b)
        if not ka or not kb:
            return MISSING
        if ka == kb:
            return 0
        return self.compare(a, b)

    def label(self, level: int) -> str:
        return MISSING_LABEL if level == MISSING else self.labels[level]


# --- names ---------------------------------------------------------------------------


@lru_cache(maxsize=n.CACHE_SIZE)
def name_key(value: str) -> str:
    """Folded name tokens: "J." and "j" are one key, so are "Mary-Ann" and "Mary Ann"."""
    return " ".join(n.name_tokens(value))


@lru_cache(maxsize=n.CACHE_SIZE)
def _first_profile(value: str, generation: int) -> tuple[str, str, frozenset[str]]:
    """(key, bare initial or "", name variants); ``generation`` keeps the variants from
    outliving a change of the admin name variants."""
    key = name_key(value)
    initial = key if len(key) == 1 and key.isalpha() else ""
    return key, initial, n.name_variants(value)


def _compatible_initial(initial: str, other_key: str) -> bool:
    return bool(initial) and other_key.startswith(initial)


def _first_name(a: str, b: str) -> int:
    generation = n.variants_generation()
    ka, ia, va = _first_profile(a, generation)
    kb, ib, vb = _first_profile(b, generation)
    # A bare initial against a name it starts, or a nickname of either (Bob / Robert).
    if _compatible_initial(ia, kb) or _compatible_initial(ib, ka) or kb in va or ka in vb:
        return 1
    similarity = JaroWinkler.similarity(ka, kb, score_cutoff=0.80)
    if similarity >= 0.92:
        return 2
    if similarity >= 0.80:
        return 3
    if n.phonetic_codes(a) & n.phonetic_codes(b):
        return 4
    return 5


def _last_name(a: str, b: str) -> int:
    ka, kb = name_key(a), name_key(b)
    # OSA: a transposition ("Smtih") is the commonest typo and counts as one edit.
    distance = OSA.distance(ka, kb, score_cutoff=2)
    if distance <= 1:
        return 1
    if distance <= 2 or JaroWinkler.similarity(ka, kb, score_cutoff=0.88) >= 0.88:
        return 2
    if n.phonetic_codes(a) & n.phonetic_codes(b):
        return 3
    return 4


# --- email and phone -------------------------------------------------------------------


@lru_cache(maxsize=n.CACHE_SIZE)
def email_key(value: str) -> str:
    return n.normalize_email(value)


def _local_part(email: str) -> str:
    return email.rpartition("@")[0]


def _email(a: str, b: str) -> int:
    ka, kb = email_key(a), email_key(b)
    local = _local_part(ka)
    # Same mailbox name at another provider, or a slip of the finger in the address.
    if (local and local == _local_part(kb)) or OSA.distance(ka, kb, score_cutoff=2) <= 2:
        return 1
    return 2


@lru_cache(maxsize=n.CACHE_SIZE)
def phone_key(value: str) -> str:
    """The digits: callers pass E.164 where the number could be read, so equal numbers
    have equal digits; the "+" and any spacing carry nothing."""
    return _NON_DIGITS.sub("", value)


def _phone(a: str, b: str) -> int:
    da, db = phone_key(a), phone_key(b)
    # The subscriber part with another (or no) country/area code: often the same line
    # written with and without its prefix.
    if len(da) >= 7 and len(db) >= 7 and da[-7:] == db[-7:]:
        return 1
    if OSA.distance(da, db, score_cutoff=1) <= 1:
        return 2
    return 3


# --- dates -------------------------------------------------------------------------------


def text_key(value: str) -> str:
    return value.strip()


@lru_cache(maxsize=n.CACHE_SIZE)
def _date_parts(value: str) -> tuple[str, str, str] | None:
    parts = value.strip().split("-")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return parts[0], parts[1], parts[2]


def _birthdate(a: str, b: str) -> int:
    pa, pb = _date_parts(a), _date_parts(b)
    if pa is None or pb is None:
        return 2
    (ya, ma, da), (yb, mb, db) = pa, pb
    # Day and month swapped is the US/European reading of the same date.
    swapped = ya == yb and ma == db and da == mb
    if swapped or (ya != yb) + (ma != mb) + (da != db) == 1:
        return 1
    return 2


# --- places and organisations ----------------------------------------------------------


@lru_cache(maxsize=n.CACHE_SIZE)
def street_key(value: str) -> str:
    """Number and name: suffix and unit are too often left out or written differently
    to make two addresses different ones."""
    number, name, _suffix, _unit = n.street_sections(value)
    if not number and not name:
        return ""
    return f"{number}|{name}"


STREET_CLOSE = 0.88
STREET_PARTIAL = 0.75


def _street(a: str, b: str) -> int:
    number_a, name_a, _, _ = n.street_sections(a)
    number_b, name_b, _, _ = n.street_sections(b)
    similarity = JaroWinkler.similarity(name_a, name_b, score_cutoff=STREET_PARTIAL)
    if number_a == number_b and similarity >= STREET_CLOSE:
        return 1
    # The same street at another number (a move down the road, a typed number), or the
    # same number on a street whose name is only somewhat alike.
    if (name_a and name_a == name_b) or (number_a == number_b and similarity >= STREET_PARTIAL):
        return 2
    return 3


@lru_cache(maxsize=n.CACHE_SIZE)
def city_key(value: str) -> str:
    return n.normalize_city(value)


def _city(a: str, b: str) -> int:
    return 1 if JaroWinkler.similarity(city_key(a), city_key(b), score_cutoff=0.90) else 2


@lru_cache(maxsize=n.CACHE_SIZE)
def postal_key(value: str) -> str:
    return n.normalize_postal(value)


def _postal_code(a: str, b: str) -> int:
    pa, pb = postal_key(a), postal_key(b)
    if OSA.distance(pa, pb, score_cutoff=1) <= 1:
        return 1
    if len(pa) >= 3 and len(pb) >= 3 and pa[:3] == pb[:3]:
        return 2
    return 3


def company_key(value: str) -> str:
    return n.normalize_company(value)  # already cached in normalize


def _company(a: str, b: str) -> int:
    ratio = fuzz.token_sort_ratio(company_key(a), company_key(b), score_cutoff=85)
    return 1 if ratio else 2


@lru_cache(maxsize=n.CACHE_SIZE)
def fold_key(value: str) -> str:
    return n.fold(value)


def _generic(a: str, b: str) -> int:
    return 1 if JaroWinkler.similarity(fold_key(a), fold_key(b), score_cutoff=0.90) else 2


# --- an address as one comparison ------------------------------------------------------

# Street, city and postal code of one address always agree or differ together: compared as
# three fields, one shared address would count three times, and a relative at the same
# address would outweigh a different first name and birth date. Compared as one, it counts
# once. Its value is the three packed (``pack_address``).
ADDRESS_PARTS = ("street", "city", "postal_code")
_SEP = "\x1f"


def pack_address(street: str, city: str, postal_code: str) -> str:
    """One address value of its parts; "" when all three are blank."""
    return _SEP.join((street, city, postal_code)) if (street or city or postal_code) else ""


def _unpack(value: str) -> tuple[str, str, str]:
    street, city, postal = [*value.split(_SEP), "", "", ""][:3]
    return street, city, postal


@lru_cache(maxsize=n.CACHE_SIZE)
def address_key(value: str) -> str:
    street, city, postal = _unpack(value)
    parts = (street_key(street) if street else "", city_key(city) if city else "",
             postal_key(postal) if postal else "")  # fmt: skip
    return "#".join(parts) if any(parts) else ""


def _same_place(city_a: str, postal_a: str, city_b: str, postal_b: str) -> bool | None:
    """Whether two addresses are in one place (postal code, else city); None if unknown."""
    if postal_a and postal_b:
        return OSA.distance(postal_key(postal_a), postal_key(postal_b), score_cutoff=1) <= 1
    if city_a and city_b:
        return bool(JaroWinkler.similarity(city_key(city_a), city_key(city_b), score_cutoff=0.9))
    return None


def _address(a: str, b: str) -> int:
    street_a, city_a, postal_a = _unpack(a)
    street_b, city_b, postal_b = _unpack(b)
    place = _same_place(city_a, postal_a, city_b, postal_b)
    street_level = _street(street_a, street_b) if street_a and street_b else None
    same_street = street_level is not None and (
        street_key(street_a) == street_key(street_b) or street_level == 1
    )
    if same_street and place is not False:
        return 1  # one address, written a little differently
    if same_street:
        return 2  # a street of that name in another place
    if place:
        return 3  # another address in the same place: neighbours, or a move within town
    return 4


# --- registry ----------------------------------------------------------------------------


FIELD_LEVELS: Mapping[str, FieldLevels] = {
    f.field: f
    for f in (
        FieldLevels(
            "first_name",
            ("exact", "variant", "jw_92", "jw_80", "phonetic", "other"),
            name_key,
            _first_name,
        ),
        FieldLevels(
            "last_name", ("exact", "edit_1", "close", "phonetic", "other"), name_key, _last_name
        ),
        FieldLevels("email", ("exact", "similar", "other"), email_key, _email),
        FieldLevels("phone", ("exact", "last_7", "edit_1", "other"), phone_key, _phone),
        FieldLevels("birthdate", ("exact", "near", "other"), text_key, _birthdate),
        FieldLevels("street", ("exact", "close", "partial", "other"), street_key, _street),
        FieldLevels("city", ("exact", "jw_90", "other"), city_key, _city),
        FieldLevels(
            "postal_code", ("exact", "edit_1", "prefix_3", "other"), postal_key, _postal_code
        ),
        FieldLevels("company", ("exact", "token_sort_85", "other"), company_key, _company),
        FieldLevels(
            "address",
            ("exact", "close", "street_only", "place_only", "other"),
            address_key,
            _address,
        ),
    )
}
# Every field compared on its own (street, city and postal code apart).
PERSON_FIELDS: tuple[str, ...] = tuple(f for f in FIELD_LEVELS if f != "address")
# What a contact or lead model compares: the address as one (see ``pack_address``).
CONTACT_FIELDS: tuple[str, ...] = (
    "first_name", "last_name", "email", "phone", "birthdate", "address", "company",
)  # fmt: skip
# Fields whose exact agreement is weighed by how common the value is ("Smith" = "Smith"
# says less than "Zbigniew" = "Zbigniew").
TF_FIELDS = frozenset({"first_name", "last_name", "city"})
GENERIC_LABELS = ("exact", "jw_90", "other")


@lru_cache(maxsize=256)
def field_levels(field: str) -> FieldLevels:
    """The levels of a field; a field without its own (a title, a custom field) compares
    as folded text: exact, Jaro-Winkler >= 0.90, or else."""
    known = FIELD_LEVELS.get(field)
    if known is not None:
        return known
    return FieldLevels(field, GENERIC_LABELS, fold_key, _generic)


def comparison_vector(
    fields: tuple[str, ...], a: Mapping[str, str], b: Mapping[str, str]
) -> tuple[int, ...]:
    """The level of each field for a pair of records (``MISSING`` where either is blank)."""
    return tuple(field_levels(f).level(a.get(f, ""), b.get(f, "")) for f in fields)
