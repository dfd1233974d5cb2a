"""Street lines read as sections: (number, name, suffix, unit).

Pure functions over the tokens of a folded street line; ``normalize.street_sections``
folds and tokenises, so the street comparator and the street match key read a street the
same way. A suffix is recognised through typos and merged spellings only where that is
safe: a word wrongly read as a suffix leaves the name, and the street name carries most
of a street's score.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from rapidfuzz.distance import OSA

__all__ = ["DIRECTIONS", "SUFFIXES", "UNIT_DESIGNATORS", "sections", "suffix_of"]

_STREET_SUFFIXES = {
    "st": ("street", "str", "st"),
    "ave": ("avenue", "av", "ave", "aven", "avn", "avnue"),
    "rd": ("road", "rd"),
    "blvd": ("boulevard", "boul", "boulv", "blvd"),
    "dr": ("drive", "drv", "driv", "dr"),
    "ln": ("lane", "ln"),
    "ct": ("court", "crt", "ct"),
    "pl": ("place", "pl"),
    "ter": ("terrace", "terr", "ter"),
    "cir": ("circle", "circ", "crcl", "cir"),
    "hwy": ("highway", "hiway", "hwy"),
    "pkwy": ("parkway", "parkwy", "pkway", "pky", "pkwy"),
    "sq": ("square", "sqr", "sq"),
    "trl": ("trail", "trl"),
    "way": ("way", "wy"),
    "expy": ("expressway", "expw", "expy"),
    "fwy": ("freeway", "frwy", "fwy"),
    "aly": ("alley", "ally", "aly"),
    "cres": ("crescent", "crsnt", "cres"),
    "plz": ("plaza", "plza", "plz"),
    "pt": ("point", "pt"),
    "cv": ("cove", "cv"),
    "grv": ("grove", "grov", "grv"),
    "hts": ("heights", "hts"),
    "rdg": ("ridge", "rdge", "rdg"),
    "xing": ("crossing", "crssng", "xing"),
    "ctr": ("center", "centre", "cntr", "ctr"),
    "tpke": ("turnpike", "trnpk", "tpke"),
    "gdns": ("gardens", "gdns"),
    "sta": ("station", "stn", "sta"),
    "loop": ("loop",),
    "row": ("row",),
    "walk": ("walk",),
    "close": ("close",),
    "mews": ("mews",),
    "pike": ("pike",),
    "path": ("path",),
    "run": ("run",),
    "park": ("park",),
}
SUFFIXES: dict[str, str] = {
    spelling: short for short, spellings in _STREET_SUFFIXES.items() for spelling in spellings
}
DIRECTIONS: dict[str, str] = {
    "north": "n",
    "south": "s",
    "east": "e",
    "west": "w",
    "northeast": "ne",
    "northwest": "nw",
    "southeast": "se",
    "southwest": "sw",
    **{short: short for short in ("n", "s", "e", "w", "ne", "nw", "se", "sw")},
}
_ORDINALS = {
    "first": "1st",
    "second": "2nd",
    "third": "3rd",
    "fourth": "4th",
    "fifth": "5th",
    "sixth": "6th",
    "seventh": "7th",
    "eighth": "8th",
    "ninth": "9th",
    "tenth": "10th",
}
UNIT_DESIGNATORS = frozenset(
    {
        "#",
        "apt",
        "apartment",
        "suite",
        "ste",
        "unit",
        "rm",
        "room",
        "fl",
        "floor",
        "bldg",
        "building",
        "lot",
        "spc",
        "space",
        "dept",
        "office",
        "ofc",
        "flat",  # British and Irish addresses
        "studio",
        "maisonette",
    }
)

# A typo is forgiven only in a suffix spelling of five letters or more, and in a word as
# long: one edit from "st" or "ln" is half the short words there are ("at", "lake").
FUZZY_MIN_LENGTH = 5
_FUZZY_SPELLINGS = tuple(s for s in SUFFIXES if len(s) >= FUZZY_MIN_LENGTH)
# Words one edit from a suffix spelling that end street names in their own right
# ("Royal Palace" is not a typo of "Royal Place").
_SUFFIX_LOOKALIKES = frozenset(
    {"palace", "plane", "plate", "count", "paint", "joint", "drove", "groove", "canter"}
)
# Suffixes split off a name they were typed onto ("Hawkenstreet"): only words that seldom
# end a name themselves, unlike the "ridge" of Oakridge or the "road" of Broad and Railroad.
_MERGED_SPELLINGS = (
    "street",
    "avenue",
    "boulevard",
    "drive",
    "terrace",
    "crescent",
    "highway",
    "parkway",
    "expressway",
    "freeway",
    "turnpike",
)
_MIN_STEM = 3


@lru_cache(maxsize=4096)
def suffix_of(word: str) -> str:
    """Canonical suffix of a word ("Street" -> "st"), also of one typo from a long
    spelling ("Atreet", "Mlace"); "" when it is no suffix."""
    known = SUFFIXES.get(word)
    if known is not None:
        return known
    if len(word) < FUZZY_MIN_LENGTH or not word.isalpha() or word in _SUFFIX_LOOKALIKES:
        return ""
    # Transpositions count as one edit, as they do for the street name. A letter added or
    # dropped in front makes another word more often than a typo ("Valley" and "Alley",
    # "Bridge" and "Ridge"), so a first letter may only be mistyped.
    for spelling in _FUZZY_SPELLINGS:
        if OSA.distance(word, spelling, score_cutoff=1) > 1:
            continue
        if len(word) == len(spelling) or word[0] == spelling[0]:
            return SUFFIXES[spelling]
    return ""


def _split_merged(word: str) -> tuple[str, str] | None:
    """(name, suffix) of a name with its suffix typed onto it, else None."""
    for spelling in _MERGED_SPELLINGS:
        stem = word.removesuffix(spelling)
        if stem != word and len(stem) >= _MIN_STEM and stem.isalpha():
            return stem, SUFFIXES[spelling]
    return None


def _take_unit(tokens: list[str]) -> tuple[list[str], str]:
    for i, token in enumerate(tokens):
        if token in UNIT_DESIGNATORS:
            # The identifier is what identifies a unit; "Apt 4" and "Suite 4" are the same.
            has_id = i + 1 < len(tokens) and tokens[i + 1] not in UNIT_DESIGNATORS
            unit = tokens[i + 1] if has_id else token
            return tokens[:i] + tokens[i + (2 if has_id else 1) :], unit
    return tokens, ""


def _take_suffix(body: list[str]) -> tuple[str, str]:
    """(name, suffix): the suffix is the last word followed only by directions
    ("Main St NW")."""
    last = len(body) - 1
    while last >= 0 and body[last] in DIRECTIONS:
        last -= 1
    # Index 0 is never a suffix on its own, or "123 Park Rd" would lose its name.
    suffix = suffix_of(body[last]) if last >= 1 else ""
    if suffix:
        return " ".join(body[:last] + body[last + 1 :]), suffix
    merged = _split_merged(body[last]) if last >= 0 else None
    if merged is not None:
        stem, suffix = merged
        return " ".join([*body[:last], stem, *body[last + 1 :]]), suffix
    return " ".join(body), ""


def sections(tokens: Sequence[str]) -> tuple[str, str, str, str]:
    """(number, name, suffix, unit) of a street line's folded tokens.

    ["123", "n", "main", "street", "apt", "4b"] -> ("123", "n main", "st", "4b").
    """
    rest, unit = _take_unit(list(tokens))
    rest = [t for t in rest if t != "#"]
    number = ""
    if rest and rest[0][0].isdigit():
        number, rest = rest[0], rest[1:]
    elif len(rest) >= 2 and rest[-1][0].isdigit():
        # Much of Europe writes the number last ("Schulstrasse 12", "Eva-Bender-Gasse 39");
        # "11/72" reads as number 11, flat 72.
        if len(rest) >= 3 and rest[-2][0].isdigit():
            number, unit, rest = rest[-2], unit or rest[-1], rest[:-2]
        else:
            number, rest = rest[-1], rest[:-1]
    body = [DIRECTIONS.get(t, _ORDINALS.get(t, t)) for t in rest]
    has_digit = bool(body) and any(ch.isdigit() for ch in body[-1])
    if not unit and len(body) >= 3 and suffix_of(body[-2]) and has_digit:
        # "123 Main St 4B": a number right after the suffix is a unit without designator.
        unit = body.pop()
    name, suffix = _take_suffix(body)
    return number, name, suffix, unit
