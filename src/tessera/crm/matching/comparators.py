"""Field comparators: two non-blank values in, a 0-100 similarity out.

They follow Salesforce's documented fuzzy matching methods: a field's score is the best
of its algorithms, and section-weighted fields (phone, street, postal code) add up the
weights of the sections that agree (a street name partly, by edit distance). The engine
handles blanks and thresholds; these are called for every candidate of every lookup, so
anything derived from a single value is cached in ``normalize`` and the few pairwise
computations here are cached too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache, lru_cache

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA, JaroWinkler, Levenshtein

from tessera.crm.matching import normalize as n
from tessera.crm.matching import streets

__all__ = [
    "METHODS",
    "city",
    "company",
    "edit_distance",
    "email",
    "exact",
    "first_name",
    "jaro_winkler",
    "keyboard_distance",
    "last_name",
    "phone",
    "postal_code",
    "street",
    "title",
    "website",
]

PHONETIC_SCORE = 90  # a shared sound alone is weaker evidence than the same spelling

PHONE_WEIGHTS = (10, 50, 30, 10)  # country code, area code, next three, last four
STREET_WEIGHTS = (20, 50, 5, 25)  # number, name, suffix, unit
STREET_NAME = 1  # the index of the name, the only section compared fuzzily
ZIP_FIVE_WEIGHT, ZIP_PLUS_FOUR_WEIGHT = 90, 10
# A postal code that is not identical is never a full match, like a US ZIP whose
# plus-four differs; scaling keeps near-miss foreign codes in the same band.
OTHER_POSTAL_SCALE = 90

# Words too small to carry a letter of an acronym ("VP of Sales", "Bank of America").
_ACRONYM_STOPWORDS = frozenset({"of", "and", "the", "for", "a", "an", "&"})


def _score(value: float) -> int:
    return max(0, min(100, round(value)))


def exact(a: str, b: str) -> int:
    return 100 if n.fold(a) == n.fold(b) else 0


def email(a: str, b: str) -> int:
    return 100 if n.normalize_email(a) == n.normalize_email(b) else 0


def website(a: str, b: str) -> int:
    domain = n.website_domain(a)
    return 100 if domain and domain == n.website_domain(b) else 0


def edit_distance(a: str, b: str) -> int:
    return _score(Levenshtein.normalized_similarity(n.fold(a), n.fold(b)) * 100)


def jaro_winkler(a: str, b: str) -> int:
    return _score(JaroWinkler.similarity(n.fold(a), n.fold(b)) * 100)


def _phonetic(a: str, b: str) -> int:
    return PHONETIC_SCORE if n.phonetic_codes(a) & n.phonetic_codes(b) else 0


# --- names -------------------------------------------------------------------------


def _initial(name: str) -> str:
    """The letter of a bare initial ("J", "J."), else ""."""
    stripped = n.fold(name).rstrip(".").strip()
    return stripped if len(stripped) == 1 and stripped.isalpha() else ""


def first_name(a: str, b: str) -> int:
    """Salesforce's first-name algorithms: exact, initials, name variant, Jaro-Winkler.
    Not how the names sound, as for last names: "Tanya" and "Dawn" sound alike (TN) and
    are two people at one address far more often than one person's typo."""
    fa, fb = n.fold(a), n.fold(b)
    if fa == fb:
        return 100
    initial_a, initial_b = _initial(a), _initial(b)
    if (initial_a and fb.startswith(initial_a)) or (initial_b and fa.startswith(initial_b)):
        return 100
    key_a, key_b = " ".join(n.name_tokens(a)), " ".join(n.name_tokens(b))
    if key_b in n.name_variants(a) or key_a in n.name_variants(b):
        return 100
    return _score(JaroWinkler.similarity(fa, fb) * 100)


def _keyboard_neighbours() -> dict[str, frozenset[str]]:
    # Staggered QWERTY: each row sits half a key right of the one above, so a key touches
    # its row neighbours, the two keys above it (same index, index+1) and the two below
    # (index-1, same index).
    rows = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")
    neighbours: dict[str, set[str]] = {}
    for r, row in enumerate(rows):
        for i, key in enumerate(row):
            near = neighbours.setdefault(key, set())
            candidates = [
                (r, i - 1),
                (r, i + 1),
                (r - 1, i),
                (r - 1, i + 1),
                (r + 1, i - 1),
                (r + 1, i),
            ]
            for rr, ii in candidates:
                if 0 <= rr < len(rows) and 0 <= ii < len(rows[rr]):
                    near.add(rows[rr][ii])
    return {key: frozenset(near) for key, near in neighbours.items()}


KEYBOARD_NEIGHBOURS = _keyboard_neighbours()
NEIGHBOUR_SUBSTITUTION_COST = 0.5


@lru_cache(maxsize=n.CACHE_SIZE)
def _keyboard_cost(a: str, b: str) -> float:
    # Levenshtein plus adjacent transposition (optimal string alignment), with a cheaper
    # substitution for a neighbouring key: "Smoth" is a slip of the finger for "Smith".
    previous2: list[float] = []
    previous = [float(j) for j in range(len(b) + 1)]
    for i in range(1, len(a) + 1):
        current = [float(i)] + [0.0] * len(b)
        for j in range(1, len(b) + 1):
            ca, cb = a[i - 1], b[j - 1]
            if ca == cb:
                substitution = 0.0
            elif cb in KEYBOARD_NEIGHBOURS.get(ca, ()):
                substitution = NEIGHBOUR_SUBSTITUTION_COST
            else:
                substitution = 1.0
            best = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + substitution)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                best = min(best, previous2[j - 2] + 1)
            current[j] = best
        previous2, previous = previous, current
    return previous[len(b)]


def keyboard_distance(a: str, b: str) -> int:
    """Similarity from a QWERTY-aware edit distance over the folded values."""
    fa, fb = n.fold(a), n.fold(b)
    longest = max(len(fa), len(fb))
    if not longest:
        return 100
    return _score(100 * (1 - _keyboard_cost(fa, fb) / longest))


def last_name(a: str, b: str) -> int:
    if n.fold(a) == n.fold(b):
        return 100
    return max(keyboard_distance(a, b), _phonetic(a, b))


# --- organisations and titles ------------------------------------------------------


@lru_cache(maxsize=n.CACHE_SIZE)
def _acronym_aligns(short: tuple[str, ...], long: tuple[str, ...]) -> bool:
    """Whether ``short`` is ``long`` with some runs of words replaced by their initials.

    Covers the plain acronym ("amd" / "advanced micro devices") and the mixed form
    ("vp sales" / "vice president sales"); at least one word of ``short`` must be an
    acronym, and only of two or more words, so a lone initial is not an acronym.
    """

    @cache
    def align(i: int, j: int, used: bool) -> bool:
        if i == len(short):
            return used and j == len(long)
        word = short[i]
        if j < len(long) and word == long[j] and align(i + 1, j + 1, used):
            return True
        k = len(word)
        return (
            k >= 2
            and j + k <= len(long)
            and "".join(w[0] for w in long[j : j + k]) == word
            and align(i + 1, j + k, True)
        )

    return align(0, 0, False)


def _acronym(words_a: Sequence[str], words_b: Sequence[str]) -> int:
    full_a, full_b = tuple(words_a), tuple(words_b)
    content_a = tuple(w for w in full_a if w not in _ACRONYM_STOPWORDS) or full_a
    content_b = tuple(w for w in full_b if w not in _ACRONYM_STOPWORDS) or full_b
    # Acronyms usually skip the small words ("VP of Sales") but some keep them ("BOA").
    for a, b in ((content_a, content_b), (full_a, full_b)):
        short, long = (a, b) if len(a) < len(b) else (b, a)
        if len(short) < len(long) and _acronym_aligns(short, long):
            return 100
    return 0


def company(a: str, b: str) -> int:
    ca, cb = n.normalize_company(a), n.normalize_company(b)
    if ca == cb:
        return 100 if ca else exact(a, b)
    if _acronym(ca.split(), cb.split()):
        return 100
    # Salesforce's syllable alignment is unpublished; sorted-token similarity plays its
    # part, tolerating reordered words and small spelling differences.
    return _score(fuzz.token_sort_ratio(ca, cb))


def title(a: str, b: str) -> int:
    wa, wb = n.words(a), n.words(b)
    if wa == wb:
        return 100
    if _acronym(wa, wb):
        return 100
    # The best of edit distance and of a word-overlap similarity, which plays the part of
    # the word-distribution comparison ("Marketing Director" / "Director of Marketing").
    joined_a, joined_b = " ".join(wa), " ".join(wb)
    overlap = fuzz.token_set_ratio(joined_a, joined_b)
    return _score(max(overlap, Levenshtein.normalized_similarity(joined_a, joined_b) * 100))


# --- places and numbers ------------------------------------------------------------


def city(a: str, b: str) -> int:
    ca, cb = n.normalize_city(a), n.normalize_city(b)
    if ca == cb:
        return 100
    return _score(Levenshtein.normalized_similarity(ca, cb) * 100)


def _has_digit(text: str) -> bool:
    return any(ch.isdigit() for ch in text)


def phone(a: str, b: str) -> int:
    if not (_has_digit(a) and _has_digit(b)):
        return exact(a, b)
    sections_a, sections_b = n.phone_sections(a), n.phone_sections(b)
    total = 0
    for index, (weight, sa, sb) in enumerate(
        zip(PHONE_WEIGHTS, sections_a, sections_b, strict=True)
    ):
        # An unknown country code (an unparseable number) is not evidence of a
        # different country; every other section must agree, blank only with blank.
        if sa == sb or (index == 0 and not (sa and sb)):
            total += weight
    return total


def _street_section(index: int, a: str, b: str) -> float:
    """Agreement (0-1) of one street section; the name is the only fuzzy one."""
    if a == b:
        return 1.0
    if index == STREET_NAME and a and b:
        return _street_name_agreement(a, b)
    return 0.0


DIRECTION_CODES = frozenset(streets.DIRECTIONS.values())
DROPPED_DIRECTION = 0.9  # "N Main" and "Main": people leave the direction out
CONFLICT = 0.5  # "N Main" and "S Main", "Avenue C" and "Avenue D": other streets


def _street_name_agreement(a: str, b: str) -> float:
    """How far two street names agree (0-1). Letters are compared by edit distance, with a
    transposition as one edit ("Mian"); but a direction on one side only costs little, and
    a word that tells streets apart (another direction, a letter, a number) costs much."""
    words_a, words_b = a.split(), b.split()
    dirs_a = {w for w in words_a if w in DIRECTION_CODES}
    dirs_b = {w for w in words_b if w in DIRECTION_CODES}
    rest_a = [w for w in words_a if w not in DIRECTION_CODES] or words_a
    rest_b = [w for w in words_b if w not in DIRECTION_CODES] or words_b
    similarity = OSA.normalized_similarity(" ".join(rest_a), " ".join(rest_b))
    conflict = bool(dirs_a and dirs_b and dirs_a != dirs_b) or _telling_word_differs(rest_a, rest_b)
    if conflict:
        return CONFLICT * similarity
    if dirs_a != dirs_b:
        return DROPPED_DIRECTION * similarity
    return similarity


def _telling_word_differs(words_a: list[str], words_b: list[str]) -> bool:
    # Word by word, a one- or two-character word or one with a digit that differs is not a
    # typo but another street ("Avenue C", "5th Street").
    if len(words_a) != len(words_b):
        return False
    return any(
        x != y and (len(x) <= 2 or len(y) <= 2 or _has_digit(x) or _has_digit(y))
        for x, y in zip(words_a, words_b, strict=True)
    )


def street(a: str, b: str) -> int:
    sections_a, sections_b = n.street_sections(a), n.street_sections(b)
    number_a, name_a, _, unit_a = sections_a
    number_b, name_b, _, unit_b = sections_b
    if not any((number_a, name_a, unit_a)) or not any((number_b, name_b, unit_b)):
        return exact(a, b)
    earned = present = 0.0
    for index, (weight, sa, sb) in enumerate(
        zip(STREET_WEIGHTS, sections_a, sections_b, strict=True)
    ):
        # A section blank on both sides ("12 Oak St" has no unit) is no evidence either
        # way, so its weight goes to the sections that are there; counting it as agreeing
        # would let a different house number on the same street reach the threshold.
        if not (sa or sb):
            continue
        present += weight
        earned += weight * _street_section(index, sa, sb)
    return _score(100 * earned / present)


def postal_code(a: str, b: str) -> int:
    pa, pb = n.normalize_postal(a), n.normalize_postal(b)
    if pa == pb:
        return 100
    zip_a, zip_b = n.split_us_zip(pa), n.split_us_zip(pb)
    if zip_a and zip_b:
        (five_a, plus_a), (five_b, plus_b) = zip_a, zip_b
        total = ZIP_FIVE_WEIGHT if five_a == five_b else 0
        if not plus_a or not plus_b or plus_a == plus_b:
            total += ZIP_PLUS_FOUR_WEIGHT
        return total
    return _score(Levenshtein.normalized_similarity(pa, pb) * OTHER_POSTAL_SCALE)


METHODS: dict[str, Callable[[str, str], int]] = {
    "exact": exact,
    "email": email,
    "first_name": first_name,
    "last_name": last_name,
    "company": company,
    "title": title,
    "city": city,
    "phone": phone,
    "street": street,
    "postal_code": postal_code,
    "website": website,
    "edit_distance": edit_distance,
    "jaro_winkler": jaro_winkler,
}

# Methods that read any text the same way, and the field each specialised method was
# built for (its normaliser knows that field's conventions: nicknames, street suffixes,
# phone sections). A specialised method on another field would score noise, and a date
# is only ever equal or not.
GENERIC_METHODS = ("exact", "edit_distance", "jaro_winkler")
METHOD_FIELDS: dict[str, frozenset[str]] = {
    "first_name": frozenset({"first_name"}),
    "last_name": frozenset({"last_name"}),
    "email": frozenset({"email"}),
    "phone": frozenset({"phone"}),
    "company": frozenset({"company", "name"}),
    "title": frozenset({"title"}),
    "city": frozenset({"city"}),
    "street": frozenset({"street"}),
    "postal_code": frozenset({"postal_code"}),
    "website": frozenset({"website"}),
}
DATE_FIELDS = frozenset({"birthdate"})


def methods_for(field: str) -> tuple[str, ...]:
    """The methods that may compare ``field``, generic ones first."""
    if field in DATE_FIELDS:
        return ("exact",)
    special = tuple(sorted(m for m, fields in METHOD_FIELDS.items() if field in fields))
    return GENERIC_METHODS + special
