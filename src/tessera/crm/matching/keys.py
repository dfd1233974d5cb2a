"""Match keys: which records could match, found through an index instead of a scan.

Every OR group of every active rule yields keys made of the blocking forms of its
criteria (first initials, last-name phonetic codes, email, phone without its last four
digits, ...). A stored record gets the keys of every group (less those that another of
its keys always accompanies); an incoming record is looked up by the same keys (and by
those of its swapped first/last name), so any record that could satisfy a group shares at
least one key with it. Salesforce has no key for its street group; here no group is
unreachable.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from itertools import product
from typing import Any

import phonenumbers
from django.conf import settings

from tessera.crm.matching import normalize as n
from tessera.crm.matching.rules import CriterionSpec, RuleSpec


def _street_key(value: str) -> frozenset[str]:
    number, name, _suffix, _unit = n.street_sections(value)
    if not name:
        return frozenset()
    return frozenset({f"{number}{n.fold(name).replace(' ', '')[:4]}"})


def _first_name_keys(value: str) -> frozenset[str]:
    # Initials of the name and its variants, plus the initial of how it sounds, so that
    # Catherine and Katherine (K0RN both) share a key although their letters differ.
    return n.first_initials(value) | {c[0].lower() for c in n.phonetic_codes(value) if c}


def _company_keys(value: str) -> frozenset[str]:
    # Salesforce's "Company (2,5)" and an acronym form, so "AMD" and "Advanced Micro
    # Devices" meet: the acronym comparator would match them, so blocking must not part them.
    out = {n.company_key(value)}
    tokens = n.normalize_company(value).split()
    if len(tokens) >= 2:
        out.add("acr:" + "".join(t[0] for t in tokens))
        significant = [t for t in tokens if t not in {"of", "and", "the", "for"}]
        out.add("acr:" + "".join(t[0] for t in significant))
    elif len(tokens) == 1 and 2 <= len(tokens[0]) <= 6:
        out.add("acr:" + tokens[0])
    return frozenset(k for k in out if k and k != "acr:")


def _one(fn: Callable[[str], str]) -> Callable[[str], frozenset[str]]:
    def keyer(value: str) -> frozenset[str]:
        out = fn(value)
        return frozenset({out}) if out else frozenset()

    return keyer


# method -> the blocking forms of a value. Methods missing here (title, generic fuzzy
# similarity) cannot narrow a search; a group needs at least one method that can.
KEYERS: dict[str, Callable[[str], frozenset[str]]] = {
    "email": _one(n.normalize_email),
    "exact": _one(n.fold),
    "first_name": _first_name_keys,
    "last_name": n.last_name_phonetics,
    "company": _company_keys,
    "phone": _one(n.phone_key),
    "postal_code": _one(n.postal_key),
    "city": _one(n.city_key),
    "website": _one(n.website_domain),
    "street": _street_key,
}
# A criterion strong enough to find a record on its own (Salesforce's email-only key).
STANDALONE = frozenset({"email"})
MAX_KEY_LENGTH = 255
BLANK = "\u2205"


def is_blockable(criterion: CriterionSpec) -> bool:
    return criterion.method in KEYERS


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


def _finish(parts: Sequence[str]) -> str:
    key = "|".join(parts)
    if len(key) > MAX_KEY_LENGTH:
        key = "h:" + hashlib.sha256(key.encode()).hexdigest()
    return key


@dataclass(frozen=True, order=True)
class _Part:
    """A blockable criterion as far as keys are concerned: equal parts give equal keys."""

    field: str
    method: str
    match_blank: bool

    @property
    def tag(self) -> str:
        return f"{self.field}.{self.method}"


def _group_parts(rule: RuleSpec, group: frozenset[int]) -> tuple[_Part, ...]:
    """A group's blockable criteria, in key order (a multiset: a group may name the same
    field and method twice, and its keys then repeat the part, as they always have)."""
    parts = [
        _Part(c.field, c.method, c.match_blank)
        for c in rule.criteria
        if c.number in group and is_blockable(c)
    ]
    # "tag=" never is a prefix of another "tag=", so this is the order of the key's parts.
    return tuple(sorted(parts, key=lambda p: (p.tag + "=", p)))


def _covers(small: tuple[_Part, ...], large: tuple[_Part, ...]) -> bool:
    return small != large and Counter(small) <= Counter(large)


@dataclass(frozen=True)
class _Plan:
    groups: tuple[tuple[_Part, ...], ...]  # the groups whose keys are worth storing
    standalone: tuple[_Part, ...]
    fields: frozenset[str]  # every field the keys read


def _make_plan(rules: Sequence[RuleSpec]) -> _Plan:
    """Every group's blocking parts, less the groups another group's keys already cover.

    Keys carry no rule id, so when one group's parts are a subset of another's (street
    alone vs street and city), two records sharing a key of the larger group always share
    one of the smaller: the larger group's keys would only repeat it. The same goes for a
    group with a standalone criterion (email), handled per record in ``record_keys``."""
    all_groups = {
        parts for rule in rules for group in rule.groups if (parts := _group_parts(rule, group))
    }
    kept = sorted(g for g in all_groups if not any(_covers(o, g) for o in all_groups))
    standalone = {
        _Part(c.field, c.method, False)
        for rule in rules
        for c in rule.criteria
        if c.method in STANDALONE
    }
    fields = {p.field for g in kept for p in g} | {p.field for p in standalone}
    return _Plan(tuple(kept), tuple(sorted(standalone)), frozenset(fields))


_plans_lock = threading.Lock()
_plans: dict[tuple[int, ...], tuple[tuple[RuleSpec, ...], _Plan]] = {}


def _plan(rules: Sequence[RuleSpec]) -> _Plan:
    # Rule specs are immutable and cached by ``active_rules``, so the same list comes back
    # until a rule changes: remember plans by identity (holding the specs, so that their
    # ids cannot be reused while the entry lives).
    ident = tuple(id(r) for r in rules)
    hit = _plans.get(ident)
    if hit is not None and all(a is b for a, b in zip(hit[0], rules, strict=True)):
        return hit[1]
    plan = _make_plan(rules)
    with _plans_lock:
        if len(_plans) > 64:
            _plans.clear()
        _plans[ident] = (tuple(rules), plan)
    return plan


@lru_cache(maxsize=n.CACHE_SIZE)
def _component(tag: str, method: str, value: str, generation: int) -> tuple[str, ...]:
    """A criterion's key parts for a value ("tag=token", sorted). ``generation`` keeps
    first-name parts from outliving a change of the admin name variants."""
    return tuple(sorted(f"{tag}={t}" for t in KEYERS[method](value)))


def group_keys(rule: RuleSpec, group: frozenset[int], record: Mapping[str, Any]) -> set[str]:
    """The keys of one group of one rule (all of them, covered by another group or not)."""
    parts = _group_parts(rule, group)
    values = {p.field: match_text(record, p.field) for p in parts}
    return _keys_of(parts, values, n.variants_generation(), cover=False)


def _keys_of(
    parts: tuple[_Part, ...], values: Mapping[str, str], generation: int, *, cover: bool
) -> set[str]:
    """The keys of a group's parts; none if a part is blank (and blank cannot match), or,
    with ``cover``, if the record's standalone key of a part (its email) covers them."""
    components: list[tuple[str, ...]] = []
    for part in parts:
        value = values[part.field]
        if value:
            if cover and part.method in STANDALONE:
                return set()
            tokens = _component(part.tag, part.method, value, generation)
        elif part.match_blank:
            tokens = (f"{part.tag}={BLANK}",)  # blank matches blank here, so blanks must meet
        else:
            return set()  # blank: this group cannot match through this record
        if not tokens:
            return set()
        components.append(tokens)
    if not components:
        return set()
    if len(components) == 1:
        return {_finish([t]) for t in components[0]}
    if len({p.tag for p in parts}) == len(parts):
        # Parts come in key order (see ``_group_parts``), so each combination is sorted.
        return {_finish(combo) for combo in product(*components)}
    return {_finish(sorted(combo)) for combo in product(*components)}


def record_keys(rules: Iterable[RuleSpec], record: Mapping[str, Any]) -> set[str]:
    """The keys to store for a record: those of every group of every rule, less the keys
    that another key of the record always accompanies (see ``_make_plan``)."""
    plan = _plan(rules if isinstance(rules, Sequence) else list(rules))
    generation = n.variants_generation()
    values = {f: match_text(record, f) for f in plan.fields}
    keys: set[str] = set()
    for part in plan.standalone:
        if value := values[part.field]:
            keys.update(_finish([c]) for c in _component(part.tag, part.method, value, generation))
    for parts in plan.groups:
        keys |= _keys_of(parts, values, generation, cover=True)
    return keys


def swapped(record: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(record)
    out["first_name"], out["last_name"] = record.get("last_name"), record.get("first_name")
    return out


def query_keys(rules: Iterable[RuleSpec], record: Mapping[str, Any]) -> set[str]:
    """The keys to look an incoming record up by: its own, and with first/last swapped."""
    return lookup_keys(rules, record)[0]


def lookup_keys(rules: Iterable[RuleSpec], record: Mapping[str, Any]) -> tuple[set[str], set[str]]:
    """(the keys to look ``record`` up by, the keys to store for it if it is saved as is)."""
    rules = rules if isinstance(rules, Sequence) else list(rules)
    own = record_keys(rules, record)
    if record.get("first_name") and record.get("last_name"):
        return own | record_keys(rules, swapped(record)), own
    return set(own), own


def same_keys(rules_a: Sequence[RuleSpec], rules_b: Sequence[RuleSpec]) -> bool:
    """Whether two rule lists give every record the same keys (contacts and leads do)."""
    return rules_a is rules_b or _plan(rules_a) == _plan(rules_b)


# Lock buckets for match keys. Creating a record locks the buckets of its keys first, so
# two creates of the same person (who share a key, so a bucket) cannot both find nothing
# and both insert. A fixed number of buckets lets a CSV import chunk, whose rows carry tens
# of thousands of keys, lock all of its own in one statement over at most 256 locks.
LOCK_BUCKETS = 256


def lock_names(keys: Iterable[str]) -> set[str]:
    """The advisory lock names that cover these match keys."""

    def bucket(key: str) -> int:
        digest = hashlib.blake2b(key.encode(), digest_size=4).digest()
        return int.from_bytes(digest, "big") % LOCK_BUCKETS

    return {f"match-bucket:{bucket(k)}" for k in keys}
