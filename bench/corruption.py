"""Realistic damage for the matching benchmark: duplicates and look-alikes of stored people.

The model follows the corruption models of the record-linkage data generators FEBRL and
GeCo (Christen et al.): each duplicate has a few of its fields damaged, fields drawn by how
often they are wrong in real data (names and addresses more than email), and each damaged
field gets one kind of error drawn from that field's own mix (KINDS). Character errors come
from ``corruption_text``: typing slips anywhere in the word, OCR confusions, spelling by
ear. Field-level errors are what clerks, forms and life do to a record: a nickname or an
initial, names swapped, a missing value, a reformatted or mistyped phone, postcode digits
swapped, street words merged, split or abbreviated, a new email, a promotion.

``hard_negative`` makes the other side of the problem: a different person who looks like a
stored one (a relative at the same address, or a namesake), as FEBRL's family and household
records do. Everything is drawn from the caller's ``random.Random`` and the factory.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, TypeVar

from bench import corruption_text as ct

if TYPE_CHECKING:
    from bench.people import PeopleFactory, Person

T = TypeVar("T")

# How many fields one duplicate has damaged.
COUNT_WEIGHTS = ((1, 50), (2, 35), (3, 15))
# How likely each field is to be the damaged one, relative to the others present. "name"
# is the first and last name swapped, which counts as one damaged field.
FIELD_WEIGHTS = {
    "first_name": 16, "last_name": 16, "name": 3, "street": 14, "city": 7, "postal_code": 7,
    "phone": 10, "email": 7, "company": 8, "title": 5, "birthdate": 7,
}  # fmt: skip
# Each field's mix of error kinds (relative weights over the kinds that apply to the value).
# "typo" is one typing slip; its tag names the slip (insert, delete, substitute, transpose).
KINDS: dict[str, tuple[tuple[str, int], ...]] = {
    "first_name": (
        ("nickname", 28), ("typo", 30), ("phonetic", 18), ("ocr", 6), ("initial", 10),
        ("missing", 3),
    ),
    "last_name": (("typo", 45), ("phonetic", 32), ("ocr", 10), ("merge", 5), ("missing", 3)),
    "name": (("swap", 1),),
    "street": (
        ("typo", 24), ("abbreviation", 22), ("merge", 12), ("split", 8), ("suffix_typo", 8),
        ("unit_dropped", 6), ("phonetic", 6), ("ocr", 5), ("missing", 4),
        # A wrong house number is a different address, not a spelling: kept rare.
        ("house_number", 5),
    ),
    "city": (("typo", 50), ("phonetic", 20), ("abbreviation", 10), ("ocr", 5), ("missing", 15)),
    "postal_code": (("digit_swap", 45), ("digit_typo", 40), ("missing", 15)),
    "phone": (("digit_typo", 30), ("digit_swap", 25), ("format", 25), ("missing", 20)),
    "email": (("typo", 45), ("provider", 20), ("new", 15), ("missing", 20)),
    "company": (("suffix", 35), ("abbreviation", 15), ("typo", 30), ("ocr", 5), ("missing", 15)),
    "title": (("changed", 55), ("typo", 15), ("missing", 30)),
    "birthdate": (("day_month_swap", 35), ("digit_typo", 30), ("year_off", 20), ("missing", 15)),
}  # fmt: skip
RELATIVE_SHARE = 0.6  # of hard negatives; the rest are namesakes
HOME_PHONE_SHARE = 0.6  # relatives who give the household's phone

# German and French street types written out or short, matched inside or before the name.
STREET_FORMS = (
    (r"(?i)(?<=[^\W\d_])(?:straße|strasse|str\.)(?=\s|$)", ("straße", "strasse", "str.")),
    (r"\b(?:avenue|av\.)(?=\s)", ("avenue", "av.")),
    (r"\b(?:boulevard|bd)(?=\s)", ("boulevard", "bd")),
    (r"\b(?:chemin|ch\.)(?=\s)", ("chemin", "ch.")),
)
UNIT_RE = re.compile(r"\b(Apt\.|Apartment|Suite|Ste\.?|#)\s*(\w+)")
UNIT_FORMS = ("Apt. {}", "Apt {}", "Apartment {}", "#{}", "Suite {}", "Ste {}", "Ste. {}")
UNIT_WORDS = frozenset({"apt", "apartment", "suite", "ste", "flat", "studio", "unit"})
# Where people split a compound street word ("Westbrook" -> "West Brook"): known endings
# and beginnings of English and German street names. Other words stay whole.
COMPOUND_TAILS = (
    "brook", "wood", "field", "ford", "land", "ville", "view", "side", "gate", "bury",
    "borough", "dale", "stone", "water", "haven", "mont", "burn", "ridge", "hurst", "wick",
    "worth", "platz", "weg", "gasse", "ring", "allee", "damm", "berg", "burg", "dorf", "feld",
)  # fmt: skip
COMPOUND_HEADS = (
    "north", "south", "east", "west", "black", "white", "green", "oak", "pine", "elm",
    "maple", "lake", "mill", "spring", "fair", "high", "cedar", "river", "park", "brook",
)  # fmt: skip
CITY_ABBR = {
    "north": "N.", "south": "S.", "east": "E.", "west": "W.", "saint": "St.", "sainte": "Ste",
    "fort": "Ft.", "mount": "Mt.", "port": "Pt.",
}  # fmt: skip
CITY_FULL = {a.lower(): f.title() for f, a in CITY_ABBR.items()}
LEGAL_RE = re.compile(
    r"[ ,]+(?:inc\.?|incorporated|l\.?l\.?c\.?|ltd\.?|limited|plc|corp\.?|corporation|co\.|"
    r"gmbh(?: & co\. kgaa?)?|stiftung & co\. kgaa?|ag|kgaa?|ohg|e\. ?v\.|e\. ?g\.|"
    r"s\.?a\.?r\.?l\.?|s\.?a\.?s\.?|s\.?a\.?|llp|lp)$",
    re.IGNORECASE,
)
ADD_SUFFIX = {
    "en_US": (", Inc.", " Inc", " LLC", " Corp."), "en_GB": (" Ltd", " Limited", " PLC"),
    "de_DE": (" GmbH", " AG", " GmbH & Co. KG"), "fr_FR": (" SA", " SARL", " SAS"),
}  # fmt: skip
COMPANY_WORDS = {
    "International": "Intl", "Brothers": "Bros", "Company": "Co", "Corporation": "Corp",
    "Associates": "Assoc", "Group": "Grp", "Manufacturing": "Mfg", "Services": "Svcs",
    "Technologies": "Tech", "Limited": "Ltd", "Incorporated": "Inc", "Industries": "Inds",
}  # fmt: skip
AND_WORDS = {"en_US": "and", "en_GB": "and", "de_DE": "und", "fr_FR": "et"}
PROVIDERS = {
    "en_US": ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com", "aol.com"),
    "en_GB": ("gmail.com", "btinternet.com", "yahoo.co.uk", "hotmail.co.uk", "outlook.com"),
    "de_DE": ("gmail.com", "gmx.de", "web.de", "t-online.de", "outlook.de"),
    "fr_FR": ("gmail.com", "orange.fr", "free.fr", "laposte.net", "hotmail.fr"),
}
REGIONS = {"en_US": "US", "en_GB": "GB", "de_DE": "DE", "fr_FR": "FR"}
PROMOTIONS = ("Senior ", "Lead ")


def _pick(rng: random.Random, weighted: Sequence[tuple[T, int]]) -> T:
    return rng.choices([k for k, _ in weighted], [w for _, w in weighted])[0]


def _titled(word: str, model: str) -> str:
    return word.upper() if len(model) > 1 and model.isupper() else word[:1].upper() + word[1:]


# --- streets, cities, companies ------------------------------------------------------------


def _word_sites(value: str) -> list[re.Match[str]]:
    return list(re.finditer(r"[^\W\d_]+\.?", value))


def abbreviation_sites(street: str) -> list[tuple[int, int, list[str]]]:
    """Where a street type can be written the other way: (start, end, other forms)."""
    sites = []
    for k, m in enumerate(_word_sites(street)):
        key, word = m.group(0).rstrip(".").lower(), m.group(0)
        if k == 0 or key in UNIT_WORDS:
            continue  # a street type follows the name; units are handled below
        if key in ct.STREET_ABBR:
            short = _titled(ct.STREET_ABBR[key], word)
            sites.append((m.start(), m.end(), [short, short + "."]))
        elif key in ct.STREET_FULL:
            sites.append((m.start(), m.end(), [_titled(ct.STREET_FULL[key], word)]))
    for pattern, forms in STREET_FORMS:
        for m in re.finditer(pattern, street):
            other = [f for f in forms if f != m.group(0).lower()]
            sites.append((m.start(), m.end(), other))
    for m in UNIT_RE.finditer(street):
        other = [f.format(m.group(2)) for f in UNIT_FORMS]
        sites.append((m.start(), m.end(), [f for f in other if f != m.group(0)]))
    return sites


def abbreviate_street(rng: random.Random, street: str) -> str | None:
    sites = abbreviation_sites(street)
    if not sites:
        return None
    start, end, forms = rng.choice(sites)
    return street[:start] + rng.choice(forms) + street[end:]


def suffix_typo(rng: random.Random, street: str) -> str | None:
    """A typing slip inside the street type only ("Stret", "Margrafplatz" -> "Margrafpltz")."""
    spans = [(s, e) for s, e, _ in abbreviation_sites(street) if not UNIT_RE.match(street, s)]
    for m in _word_sites(street):
        word = m.group(0).lower()
        tail = next((t for t in COMPOUND_TAILS if word.endswith(t) and len(word) > len(t)), "")
        if tail and tail in ("platz", "weg", "gasse", "ring", "allee", "damm"):
            spans.append((m.end() - len(tail), m.end()))
    rng.shuffle(spans)
    for start, end in spans:
        out = ct.typo(rng, street[start:end])
        if out is not None:
            return street[:start] + out[0] + street[end:]
    return None


def merge_words(rng: random.Random, value: str, *, capitals_only: bool) -> str | None:
    """Two words written as one ("Hawken Street" -> "Hawkenstreet", "Le Roux" -> "Leroux")."""
    sites = []
    for m in re.finditer(r"(?<=[^\W\d_])[ -](?=[^\W\d_])", value):
        left = re.findall(r"[^\W\d_]+$", value[: m.start()])[0]
        right = re.findall(r"^[^\W\d_]+", value[m.end() :])[0]
        if left.lower() in UNIT_WORDS or right.lower() in UNIT_WORDS:
            continue
        if not capitals_only or (left[0].isupper() and right[0].isupper()):
            sites.append(m.start())
    if not sites:
        return None
    at = rng.choice(sites)
    rest = value[at + 1 :]
    if rng.random() < 0.7:  # most people type the joined word in lower case after its start
        rest = rest[0].lower() + rest[1:]
    return value[:at] + rest


def split_word(rng: random.Random, street: str, *, german: bool) -> str | None:
    """A compound street word written as two ("Westbrook Road" -> "West Brook Road")."""
    sites = []
    for m in re.finditer(r"[^\W\d_]{6,}", street):
        word = m.group(0).lower()
        cuts = [len(word) - len(t) for t in COMPOUND_TAILS if word.endswith(t)]
        cuts += [len(h) for h in COMPOUND_HEADS if word.startswith(h)]
        sites += [(m, at) for at in cuts if 3 <= at <= len(word) - 3]
    if not sites:
        return None
    m, at = rng.choice(sites)
    word = m.group(0)
    sep = "-" if german and rng.random() < 0.5 else " "
    return (
        street[: m.start()]
        + word[:at]
        + sep
        + word[at].upper()
        + word[at + 1 :]
        + street[m.end() :]
    )


def change_house_number(rng: random.Random, street: str) -> str | None:
    """The house number typed wrong, or the house across the street (two numbers on)."""
    for m in re.finditer(r"\d+", street):
        before = street[: m.start()]
        if re.search(r"(?i)(apt\.?|apartment|suite|ste\.?|flat|studio|unit|#)\s*$", before):
            continue
        if before.endswith(("/", "-")):
            continue
        digits, number = m.group(0), int(m.group(0))
        if rng.random() < 0.5 and number > 2:
            new = str(number + rng.choice((-2, 2))).zfill(len(digits))
        else:
            new = ct.digit_typo(rng, digits) or ""
            if new.startswith("0") and not digits.startswith("0"):
                new = str(number + 2)
        return street[: m.start()] + new + street[m.end() :]
    return None


def drop_unit(street: str) -> str | None:
    out = re.sub(r"\s*,?\s+(?:Apt\.?|Apartment|Suite|Ste\.?|#)\s*\w+$", "", street)
    out = re.sub(r"^(?:Flat|Studio|Unit|Apartment)\s+\w+,\s*", "", out)
    return out if out != street and out.strip() else None


def abbreviate_city(rng: random.Random, city: str) -> str | None:
    sites = []
    for m in _word_sites(city):
        key = m.group(0).lower()
        if key in CITY_ABBR:
            sites.append((m, CITY_ABBR[key]))
        elif key in CITY_FULL or key + "." in CITY_FULL:
            sites.append((m, CITY_FULL.get(key) or CITY_FULL[key + "."]))
    if not sites:
        return None
    m, new = rng.choice(sites)
    return city[: m.start()] + new + city[m.end() :]


def toggle_legal_suffix(rng: random.Random, company: str, locale: str) -> str | None:
    """The legal form dropped when the name has one, else one added."""
    m = LEGAL_RE.search(company)
    if m is None:
        return company + rng.choice(ADD_SUFFIX.get(locale, ADD_SUFFIX["en_US"]))
    rest = company[: m.start()].rstrip(" ,")
    if not rest or re.search(r"(?i)(&|\band|\bund|\bet)$", rest):
        return None
    return rest


def abbreviate_company(rng: random.Random, company: str, locale: str) -> str | None:
    """The "and" written "&" or back, a word shortened, or the partners' initials ("NHH")."""
    and_word = AND_WORDS.get(locale, "and")
    options = []
    if f" {and_word} " in company:
        options.append(company.replace(f" {and_word} ", " & ", 1))
    if " & " in company:
        options.append(company.replace(" & ", f" {and_word} ", 1))
    for full, short in COMPANY_WORDS.items():
        if re.search(rf"\b{full}\b", company):
            options.append(re.sub(rf"\b{full}\b", short, company, count=1))
    base = LEGAL_RE.sub("", company)
    names = [w for w in re.findall(r"[^\W\d_][\w'\u2019]*", base) if w[0].isupper()]
    if len(names) >= 3:
        options.append("".join(w[0] for w in names))
    return rng.choice(options) if options else None


ABBREVIATORS: dict[str, Callable[[random.Random, str, str], str | None]] = {
    "street": lambda rng, value, _locale: abbreviate_street(rng, value),
    "city": lambda rng, value, _locale: abbreviate_city(rng, value),
    "company": abbreviate_company,
}


# --- look-alikes --------------------------------------------------------------------------


def other_birthdate(rng: random.Random, value: str, *, relative: bool) -> str:
    """A birth date for someone else: a spouse, sibling, parent or child of the person born
    on value, or (not relative) anyone."""
    born = ct.valid_date(value) or date(1975, 1, 1)
    while True:
        if relative:
            years = rng.choice((rng.randint(0, 8), rng.randint(1, 12), rng.randint(18, 40)))
            days = years * 365 + rng.randint(1, 364)
            out = born + timedelta(days=days * rng.choice((-1, 1)))
        else:
            out = date(1940, 1, 1) + timedelta(days=rng.randrange(365 * 66))
        if out != born and 1920 <= out.year <= 2010:
            return out.isoformat()


# --- the damager ---------------------------------------------------------------------------


class RealisticDamager:
    """Duplicates damaged as in FEBRL / GeCo-style generators, and hard negatives."""

    def __init__(self, rng: random.Random, factory: PeopleFactory) -> None:
        from nicknames import NickNamer

        self.rng = rng
        self.factory = factory
        self.nicknamer = NickNamer()
        self._source: dict[str, str] = {}

    def locale(self, loc: int) -> str:
        return str(self.factory.fakers[loc].locales[0])

    def damage(self, person: Person) -> tuple[dict[str, str], list[str]]:
        """A damaged copy of person.values (blank fields dropped from the dict) and its tags,
        one per damaged field, as "field:kind" (e.g. "last_name:transpose")."""
        v = dict(person.values)
        self._source = person.values
        want = _pick(self.rng, COUNT_WEIGHTS)
        fields = [f for f in FIELD_WEIGHTS if self._present(f, v)]
        tags: list[str] = []
        while fields and len(tags) < want:
            field = _pick(self.rng, [(f, FIELD_WEIGHTS[f]) for f in fields])
            fields.remove(field)
            kind = self._damage_field(field, v, person.locale)
            if kind is None:
                continue
            tags.append(f"{field}:{kind}")
            # A swap and damage to either name would both claim the same field.
            if field == "name":
                fields = [f for f in fields if f not in ("first_name", "last_name")]
            elif field in ("first_name", "last_name"):
                fields = [f for f in fields if f != "name"]
        return {k: x for k, x in v.items() if x}, tags

    @staticmethod
    def _present(field: str, v: dict[str, str]) -> bool:
        if field == "name":
            first, last = v.get("first_name", ""), v.get("last_name", "")
            return bool(first and last) and first.lower() != last.lower()
        return bool(v.get(field))

    def _damage_field(self, field: str, v: dict[str, str], loc: int) -> str | None:
        """Damage one field with a kind drawn from its mix, falling back to another kind
        when the drawn one cannot change this value. Returns the tag's kind."""
        if field == "name":
            v["first_name"], v["last_name"] = v["last_name"], v["first_name"]
            return "swap"
        kinds = list(KINDS[field])
        while kinds:
            kind = _pick(self.rng, kinds)
            kinds = [k for k in kinds if k[0] != kind]
            out = self._apply(kind, field, v[field], loc)
            if out is not None and out[0] != v[field] and (out[0].strip() or kind == "missing"):
                v[field] = out[0]
                return out[1]
        return None

    def _apply(self, kind: str, field: str, value: str, loc: int) -> tuple[str, str] | None:
        """One kind of error on one value: (new value, tag kind), or None if the kind
        cannot change this value."""
        rng, locale = self.rng, self.locale(loc)
        if kind == "typo":
            return self._typo(field, value)
        region = REGIONS[locale]
        skip = ct.country_code_digits(value, region) if field == "phone" else 0
        makers: dict[str, Callable[[], str | None]] = {
            "missing": lambda: "",
            "ocr": lambda: ct.ocr(rng, value),
            "phonetic": lambda: ct.phonetic(rng, value, german=locale == "de_DE"),
            "nickname": lambda: self._nickname(value),
            "initial": lambda: self._initial(value),
            "merge": lambda: merge_words(rng, value, capitals_only=field == "street"),
            "split": lambda: split_word(rng, value, german=locale == "de_DE"),
            "abbreviation": lambda: ABBREVIATORS[field](rng, value, locale),
            "suffix_typo": lambda: suffix_typo(rng, value),
            "unit_dropped": lambda: drop_unit(value),
            "house_number": lambda: change_house_number(rng, value),
            "digit_typo": lambda: (
                ct.corrupt_date(rng, kind, value)
                if field == "birthdate"
                else ct.digit_typo(rng, value, skip=skip)
            ),
            "digit_swap": lambda: ct.digit_swap(rng, value, skip=skip),
            "format": lambda: ct.reformat_phone(rng, value, region),
            "provider": lambda: self._provider(value, locale),
            "new": lambda: self.factory.email(
                self._source.get("first_name", ""), self._source.get("last_name", "")
            ),
            "suffix": lambda: toggle_legal_suffix(rng, value, locale),
            "changed": lambda: self._changed(value, loc),
            "day_month_swap": lambda: ct.corrupt_date(rng, kind, value),
            "year_off": lambda: ct.corrupt_date(rng, kind, value),
        }
        out = makers[kind]()
        return (out, kind) if out is not None else None

    def _typo(self, field: str, value: str) -> tuple[str, str] | None:
        if field != "email":
            return ct.typo(self.rng, value)
        local, _, domain = value.partition("@")
        out = ct.typo(self.rng, local, alnum=True)  # the local part: the domain is picked
        return (f"{out[0]}@{domain}", out[1]) if out and domain else None

    def _nickname(self, value: str) -> str | None:
        low = value.lower()
        names = self.nicknamer.nicknames_of(low) | self.nicknamer.canonicals_of(low)
        options = sorted(n for n in names if n != low)
        return self.rng.choice(options).title() if options else None

    def _initial(self, value: str) -> str | None:
        if len(value) < 3 or not value[0].isalpha():
            return None
        return value[0].upper() + ("." if self.rng.random() < 0.8 else "")

    def _provider(self, value: str, locale: str) -> str | None:
        local, _, domain = value.partition("@")
        others = [d for d in PROVIDERS[locale] if d != domain]
        self.rng.shuffle(others)
        # Someone else may hold the address at the other provider; that is not this person.
        fresh = (f"{local}@{d}" for d in others if f"{local}@{d}" not in self.factory.emails)
        return next(fresh, None)

    def _changed(self, value: str, loc: int) -> str | None:
        """A promotion, or another job altogether."""
        english = self.locale(loc).startswith("en")
        if english and self.rng.random() < 0.4 and not value.startswith(PROMOTIONS):
            return self.rng.choice(PROMOTIONS) + value
        return self._differing(lambda: str(self.factory.fakers[loc].job())[:128], value) or None

    # --- hard negatives --------------------------------------------------------------------

    def hard_negative(self, person: Person) -> tuple[dict[str, str], list[str]]:
        """A DIFFERENT person who looks like `person`: a relative (same last name and
        address, often the same home phone) or a namesake (same names, nothing else)."""
        v = person.values
        has_home = bool(v.get("last_name") and v.get("street"))
        if has_home and self.rng.random() < RELATIVE_SHARE:
            return self._relative(person), ["negative:relative"]
        return self._namesake(person), ["negative:namesake"]

    def _relative(self, person: Person) -> dict[str, str]:
        v, loc = dict(person.values), person.locale
        fake = self.factory.fakers[loc]
        v["first_name"] = self._other_first_name(v.get("first_name", ""), loc)
        v["email"] = self.factory.email(v["first_name"], v["last_name"])
        if not (v.get("phone") and self.rng.random() < HOME_PHONE_SHARE):
            v["phone"] = self.factory.phone(loc)
        v["company"] = str(fake.company()) if self.rng.random() < 0.8 else ""
        v["title"] = str(fake.job())[:128] if self.rng.random() < 0.8 else ""
        if v.get("birthdate"):
            v["birthdate"] = other_birthdate(self.rng, v["birthdate"], relative=True)
        return {k: x for k, x in v.items() if x}

    def _namesake(self, person: Person) -> dict[str, str]:
        src, loc = person.values, person.locale
        fake = self.factory.fakers[loc]
        v = {"first_name": src.get("first_name", ""), "last_name": src.get("last_name", "")}
        v["email"] = self.factory.email(v["first_name"], v["last_name"])
        v["phone"] = self._differing(lambda: self.factory.phone(loc), src.get("phone", ""))
        for _ in range(20):
            address = self.factory.address(loc)
            if all(address[k] != src.get(k) for k in address):
                break
        v.update(address)
        v["company"] = self._differing(lambda: str(fake.company()), src.get("company", ""))
        v["title"] = self._differing(lambda: str(fake.job())[:128], src.get("title", ""))
        v["country"] = src.get("country", "")
        if src.get("birthdate"):
            v["birthdate"] = other_birthdate(self.rng, src["birthdate"], relative=False)
        return {k: x for k, x in v.items() if x}

    @staticmethod
    def _differing(make: Callable[[], str], old: str) -> str:
        for _ in range(20):
            new = str(make())
            if new != old:
                return new
        return ""

    def _other_first_name(self, first: str, loc: int) -> str:
        """A first name that is neither this one nor one of its nicknames or formal forms."""
        low = first.lower()
        related = self.nicknamer.nicknames_of(low) | self.nicknamer.canonicals_of(low) | {low}
        for _ in range(50):
            name = str(self.factory.fakers[loc].first_name())
            if name.lower() not in related:
                return name
        return "Alex" if low != "alex" else "Sam"
