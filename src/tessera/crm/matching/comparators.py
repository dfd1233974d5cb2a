"""Field comparators: two non-blank values in, a 0-100 similarity out.

They follow Salesforce's documented fuzzy matching methods: a field's score is the best
of its algorithms, and section-weighted fields (phone, street, postal code) add up the
weights of the sections that agree. The engine handles blanks and thresholds; these are
called for every candidate of every lookup, so anything derived from a single value is
cached in ``normalize`` and the few pairwise computations here are cached too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache, lru_cache

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA, JaroWinkler, Levenshtein

from tessera.crm.matching import normalize as n

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
    fa, fb = n.fold(a), n.fold(b)
    if fa == fb:
        return 100
    initial_a, initial_b = _initial(a), _initial(b)
    if (initial_a and fb.startswith(initial_a)) or (initial_b and fa.startswith(initial_b)):
        return 100
    key_a, key_b = " ".join(n.name_tokens(a)), " ".join(n.name_tokens(b))
    if key_b in n.name_variants(a) or key_a in n.name_variants(b):
        return 100
    return max(_score(JaroWinkler.similarity(fa, fb) * 100), _phonetic(a, b))


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
    return _score(fuzz.token_set_ratio(" ".join(wa), " ".join(wb)))


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


def street(a: str, b: str) -> int:
    number_a, name_a, suffix_a, unit_a = n.street_sections(a)
    number_b, name_b, suffix_b, unit_b = n.street_sections(b)
    if not any((number_a, name_a, unit_a)) or not any((number_b, name_b, unit_b)):
        return exact(a, b)
    w_number, w_name, w_suffix, w_unit = STREET_WEIGHTS
    total = 0.0
    total += w_number if number_a == number_b else 0
    if name_a == name_b:
        total += w_name
    elif name_a and name_b:
        # Transposed letters ("Mian") are the commonest typo, so they count as one edit.
        total += w_name * OSA.normalized_similarity(name_a, name_b)
    total += w_suffix if suffix_a == suffix_b else 0
    total += w_unit if unit_a == unit_b else 0
    return _score(total)


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
