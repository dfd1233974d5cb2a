"""Match keys: which records could match, found through an index instead of a scan.

Every OR group of every active rule yields keys made of the blocking forms of its
criteria (first initials, last-name phonetic codes, email, phone without its last four
digits, ...). A stored record gets the keys of every group (less those that another of
its keys always accompanies); an incoming record is looked up by the same keys (and by
those of its swapped first/last name).

Keys must never be stricter than the comparators. A comparator forgives a typo ("Bradshaw"
and "Bradxhaw" are one last name at 90), but a typo can change a blocking form (the
phonetic code), and a key made of every part of a group changes with it. So a group gets
several keys, one per fuzzy part (see ``_loosened``): that part left out, when what remains
still narrows the search on its own (last name and phone), or else that part cut to forms
one typo cannot all change (a street's number alone and its name alone). A record with any
one field damaged still shares a key with the original. Salesforce has no key for its
street group; here no group is unreachable.
"""

from __future__ import annotations

import hashlib
import threading
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import product
from typing import Any

from tessera.crm.matching import normalize as n
from tessera.crm.matching.rules import CriterionSpec, RuleSpec
from tessera.crm.matching.values import match_text


def _street_key(value: str) -> frozenset[str]:
    number, name, _suffix, _unit = n.street_sections(value)
    if not name:
        return frozenset()
    return frozenset({f"{number}{_street_name_key(name)}"})


# Words that open a street's name in much of Europe ("rue", "chemin", "via"): as the first
# four letters of the key they would put half of France in one bucket.
STREET_TYPE_WORDS = frozenset(
    {
        "rue", "chemin", "avenue", "av", "ave", "boulevard", "bd", "blvd", "allee", "impasse",
        "place", "route", "quai", "cours", "via", "viale", "piazza", "calle", "avenida",
        "strada", "the",
    }
)  # fmt: skip


def _street_name_key(name: str) -> str:
    words = n.fold(name).split()
    while len(words) > 1 and words[0] in STREET_TYPE_WORDS:
        words = words[1:]
    return "".join(words)[:4]


def _phone_key(value: str) -> frozenset[str]:
    # The area code and the digits after it, as the comparator reads them: it forgives the
    # last four (90) and the country code (a missing one, or another: 90), never the rest.
    _country, area, middle, _last4 = n.phone_sections(value)
    national = area + middle
    return frozenset({national}) if len(national) >= 5 else frozenset()


def _first_name_keys(value: str) -> frozenset[str]:
    # Initials of the name and its variants, plus the initial of how it sounds, so that
    # Catherine and Katherine (K0RN both) share a key although their letters differ. Not a
    # vowel's sound ("A" for Emma and Olivia alike): that would put a third of all people
    # in one bucket; such names still meet through the keys that leave the first name out.
    initials = n.first_initials(value)
    sounds = {c[0].lower() for c in n.phonetic_codes(value) if c}
    return initials | (sounds - {"a"})


# An acronym key is stored under one prefix and looked up under the other: a name of
# several words stores its initials as "acr:" and a short single word stores itself as
# "abbr:", so "AMD" and "Advanced Micro Devices" meet (the acronym comparator matches them,
# so blocking must not part them), while two names of several words never meet by their
# initials alone ("Miller and Sons" and "Mason Stone": a bucket of every M-and-S company).
ACRONYM, ABBREVIATION = "acr:", "abbr:"


def _company_keys(value: str) -> frozenset[str]:
    # Salesforce's "Company (2,5)" and the acronym forms above.
    out = {n.company_key(value)}
    tokens = n.normalize_company(value).split()
    if len(tokens) >= 2:
        out.add(ACRONYM + "".join(t[0] for t in tokens))
        significant = [t for t in tokens if t not in {"of", "and", "the", "for"}]
        out.add(ACRONYM + "".join(t[0] for t in significant))
    elif len(tokens) == 1 and 2 <= len(tokens[0]) <= 6:
        out.add(ABBREVIATION + tokens[0])
    return frozenset(k for k in out if k and k not in (ACRONYM, ABBREVIATION))


def _looked_up(token: str) -> str:
    """The key component a lookup asks for, for a stored one (acronyms cross over)."""
    if token.startswith(ACRONYM):
        return ABBREVIATION + token[len(ACRONYM) :]
    if token.startswith(ABBREVIATION):
        return ACRONYM + token[len(ABBREVIATION) :]
    return token


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
    "phone": _phone_key,
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


# --- loosening: keys that one damaged field cannot all change --------------------------


def _ends(text: str) -> frozenset[str]:
    """The first two and the last two letters: one edit changes at most one of them (an
    edit touches one place, or two neighbouring letters), unless the word is that short."""
    letters = "".join(ch for ch in n.fold(text) if ch.isalnum())
    return frozenset({letters[:2], letters[-2:]}) - {""}


def _first_name_cuts(value: str) -> frozenset[str]:
    # The initial changes only when the first letters do; the last two letters then stay.
    letters = "".join(ch for ch in n.fold(value) if ch.isalnum())
    return frozenset({letters[-2:]}) if letters else frozenset()


def _street_cuts(value: str) -> frozenset[str]:
    # A typo lands in the house number or in the name, not both: "12 Oak St" against
    # "12 Oal St" (83) still shares the number, "12 Oak" against "21 Oak" the name.
    number, name, _suffix, _unit = n.street_sections(value)
    out = {f"n:{number}"} if number else set()
    if name:
        out.add(f"s:{_street_name_key(name)}")
    return frozenset(out)


def _company_cuts(value: str) -> frozenset[str]:
    # Each of the two words Salesforce's company key reads, or a lone word's two ends.
    tokens = n.normalize_company(value).split()
    telling = [t for t in tokens if t not in GENERIC_COMPANY_WORDS] or tokens
    if len(telling) >= 2:
        return frozenset(t[:5] for t in telling[:2])
    return _ends(telling[0]) if telling else frozenset()


# Words too common in company names to narrow anything ("Smith and Jones", "Acme Group").
GENERIC_COMPANY_WORDS = frozenset(
    {
        "and", "of", "the", "for", "group", "company", "associates", "partners", "holdings",
        "international", "services", "solutions", "systems", "industries", "enterprises",
    }
)  # fmt: skip


# method -> forms of a value that survive any one typo in it, used in a group's key in
# place of the method's usual forms when leaving the criterion out would not narrow the
# search enough. Phones need none: a phone that passes its comparator (80) agrees on all
# but its last four digits, which its key leaves out already; a typo elsewhere fails it.
CUTS: dict[str, Callable[[str], frozenset[str]]] = {
    "first_name": _first_name_cuts,
    "last_name": _ends,
    "company": _company_cuts,
    "street": _street_cuts,
    "city": _ends,
}


def _first_letter(value: str) -> frozenset[str]:
    letters = n.name_tokens(value)
    return frozenset({letters[0][0]}) if letters else frozenset()


def _main_phonetic(value: str) -> frozenset[str]:
    codes = n.last_name_phonetics(value)
    return frozenset({min(codes)}) if codes else frozenset()


# method -> one form of a value, for the parts beside a cut one: a key with a cut part is
# there for a typo in that part, so the others are the same values and one form each is
# enough (the method's other forms, for nicknames or acronyms, are in the group's other
# keys). It keeps a record's keys few: a cut part already gives two.
MAIN_FORMS: dict[str, Callable[[str], frozenset[str]]] = {
    "first_name": _first_letter,
    "last_name": _main_phonetic,
    "company": _one(n.company_key),
}
# Methods whose passing values have equal blocking forms: nothing to loosen.
EXACT_FORMS = frozenset({"email", "exact", "website"})
# How well a method's forms narrow a search (a street alone: a handful of records; a last
# name, a company, or a phone's key, which is an area code and exchange of up to 10,000
# numbers: a few hundred at a million records; a first initial: a tenth of them). A part
# is left out of a key only if what remains scores ANCHOR or more.
NARROWING = {"email": 3, "street": 2, "website": 2, "phone": 1, "last_name": 1, "company": 1}
ANCHOR = 2


def _finish(parts: Sequence[str]) -> str:
    key = "|".join(parts)
    if len(key) > MAX_KEY_LENGTH:
        key = "h:" + hashlib.sha256(key.encode()).hexdigest()
    return key


@dataclass(frozen=True, order=True)
class _Part:
    """A blockable criterion as far as keys are concerned, with the forms its key reads
    ("" the method's forms, "~" its cuts, "." its main form): equal parts give equal keys."""

    field: str
    method: str
    match_blank: bool
    form: str = ""

    @property
    def tag(self) -> str:
        return f"{self.field}.{self.method}{self.form}"

    def cut(self) -> _Part:
        return _Part(self.field, self.method, self.match_blank, "~")

    def main(self) -> _Part:
        return _Part(self.field, self.method, self.match_blank, ".") if (
            self.method in MAIN_FORMS
        ) else self  # fmt: skip


def _key_order(parts: Iterable[_Part]) -> tuple[_Part, ...]:
    # "tag=" never is a prefix of another "tag=", so this is the order of the key's parts.
    return tuple(sorted(parts, key=lambda p: (p.tag + "=", p)))


def _group_parts(rule: RuleSpec, group: frozenset[int]) -> tuple[_Part, ...]:
    """A group's blockable criteria, in key order (a multiset: a group may name the same
    field and method twice, and its keys then repeat the part, as they always have)."""
    return _key_order(
        _Part(c.field, c.method, c.match_blank)
        for c in rule.criteria
        if c.number in group and is_blockable(c)
    )


def _loosened(parts: tuple[_Part, ...]) -> set[tuple[_Part, ...]]:
    """The keys' shapes for one group: for each fuzzy part, the group without it if the rest
    narrows enough, else the group with that part cut; the group as it is where a part can
    be neither (a single criterion, a phone with nothing strong beside it)."""
    shapes: set[tuple[_Part, ...]] = set()
    for i, part in enumerate(parts):
        if part.method in EXACT_FORMS:
            continue
        rest = parts[:i] + parts[i + 1 :]
        if rest and sum(NARROWING.get(p.method, 0) for p in rest) >= ANCHOR:
            shapes.add(rest)
        elif rest and part.method in CUTS:
            shapes.add(_key_order((*(p.main() for p in rest), part.cut())))
        else:
            shapes.add(parts)
    return shapes or {parts}


def _covers(small: tuple[_Part, ...], large: tuple[_Part, ...]) -> bool:
    return small != large and Counter(small) <= Counter(large)


@dataclass(frozen=True)
class _Plan:
    shapes: tuple[tuple[_Part, ...], ...]  # the key shapes worth storing
    standalone: tuple[_Part, ...]
    fields: frozenset[str]  # every field the keys read


def _make_plan(rules: Sequence[RuleSpec]) -> _Plan:
    """Every group's key shapes, less those another shape already covers.

    Keys carry no rule id, so when one group's parts are a subset of another's (street
    alone vs street and city), a pair that satisfies the larger group satisfies the smaller,
    whose keys find it: the larger group needs none. Likewise a shape whose parts include
    another's only repeats it (two records sharing its key share the other's). A group with
    a standalone criterion (email) is handled per record in ``record_keys``."""
    all_groups = {
        parts for rule in rules for group in rule.groups if (parts := _group_parts(rule, group))
    }
    # A group with a standalone criterion never needs keys of its own: a record with that
    # value has the standalone key, and one without it cannot satisfy the group.
    groups = [
        g
        for g in all_groups
        if not any(_covers(o, g) for o in all_groups)
        and not any(p.method in STANDALONE and not p.match_blank for p in g)
    ]
    shapes = {shape for g in groups for shape in _loosened(g)}
    kept = sorted(s for s in shapes if not any(_covers(o, s) for o in shapes))
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
def _component(
    tag: str, method: str, form: str, value: str, generation: int, query: bool = False
) -> tuple[str, ...]:
    """A part's key components for a value ("tag=token", sorted); with ``query``, those a
    lookup of the value asks for. ``generation`` keeps first-name parts from outliving a
    change of the admin name variants."""
    tokens = {"": KEYERS, "~": CUTS, ".": MAIN_FORMS}[form][method](value)
    if query and method == "company":
        tokens = frozenset(_looked_up(t) for t in tokens)
    return tuple(sorted(f"{tag}={t}" for t in tokens))


def _keys_of(
    parts: tuple[_Part, ...],
    values: Mapping[str, str],
    generation: int,
    *,
    cover: bool,
    query: bool = False,
) -> set[str]:
    """The keys of one shape; none if a part is blank (and blank cannot match), or, with
    ``cover``, if the record's standalone key of a part (its email) covers them."""
    components: list[tuple[str, ...]] = []
    for part in parts:
        value = values[part.field]
        if value:
            if cover and part.method in STANDALONE:
                return set()
            tokens = _component(part.tag, part.method, part.form, value, generation, query)
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
        # Parts come in key order (see ``_key_order``), so each combination is sorted.
        return {_finish(combo) for combo in product(*components)}
    return {_finish(sorted(combo)) for combo in product(*components)}


def record_keys(
    rules: Iterable[RuleSpec], record: Mapping[str, Any], *, query: bool = False
) -> set[str]:
    """The keys to store for a record: those of every shape of every rule's groups, less
    the keys that another key of the record always accompanies (see ``_make_plan``); with
    ``query``, the keys that find the records this one matches."""
    plan = _plan(rules if isinstance(rules, Sequence) else list(rules))
    generation = n.variants_generation()
    values = {f: match_text(record, f) for f in plan.fields}
    keys: set[str] = set()
    for part in plan.standalone:
        if value := values[part.field]:
            keys.update(
                _finish([c])
                for c in _component(part.tag, part.method, "", value, generation, query)
            )
    for parts in plan.shapes:
        keys |= _keys_of(parts, values, generation, cover=True, query=query)
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
    own, asked = record_keys(rules, record), record_keys(rules, record, query=True)
    if record.get("first_name") and record.get("last_name"):
        return asked | record_keys(rules, swapped(record), query=True), own
    return asked, own


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

    # CRC-32: the same in every process (unlike ``hash``), and cheap for the hundreds of
    # thousands of keys of an import chunk.
    return {f"match-bucket:{zlib.crc32(k.encode()) % LOCK_BUCKETS}" for k in keys}
