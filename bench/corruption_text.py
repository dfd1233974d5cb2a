"""Character-level corruptions for the realistic duplicate model (``corruption.py``).

Three sources of error, as record-linkage data generators in the FEBRL / GeCo family model
them: typing slips (one insert, delete, substitute or transpose, keyboard neighbours far
likelier than random keys), OCR confusions of similar-looking glyphs, and phonetic
misspellings (the name written as it sounds). Every function takes the caller's
``random.Random`` and returns ``None`` when it cannot change the value, never the value
unchanged, so the caller can fall back to another kind of error.
"""

from __future__ import annotations

import itertools
import random
import re
import string
from datetime import date

# A staggered QWERTY layout: each row with its horizontal offset in key widths, so keys in
# the rows above and below count as neighbours when they overlap (s touches w, e, z, x).
_ROWS = (("1234567890", 0.0), ("qwertyuiop", 0.5), ("asdfghjkl", 0.75), ("zxcvbnm", 1.25))


def _neighbour_map() -> dict[str, str]:
    keys = [(c, r, i + off) for r, (row, off) in enumerate(_ROWS) for i, c in enumerate(row)]
    out: dict[str, str] = {}
    for c, r, x in keys:
        near = [
            c2
            for c2, r2, x2 in keys
            if c2 != c
            and ((r2 == r and abs(x2 - x) == 1) or (abs(r2 - r) == 1 and abs(x2 - x) < 1))
        ]
        out[c] = "".join(near)
    return out


NEIGHBOURS = _neighbour_map()

# Share of substituted or inserted keys that are a neighbour of the intended one; the rest
# are any other key (a slip of the whole hand, a wrong guess at the spelling).
NEIGHBOUR_SHARE = 0.8
# Relative frequencies of the four single edits in studies of typed misspellings (Damerau,
# Peterson): substitutions most common, then deletions, insertions, transpositions.
EDIT_WEIGHTS = (("substitute", 45), ("delete", 25), ("insert", 18), ("transpose", 12))

# Glyphs a scanner or a tired reader takes for one another, each way round.
OCR_PAIRS = (
    ("rn", "m"), ("m", "rn"), ("nn", "m"), ("cl", "d"), ("d", "cl"), ("vv", "w"), ("w", "vv"),
    ("l", "1"), ("1", "l"), ("I", "l"), ("l", "I"), ("i", "l"), ("li", "h"), ("ri", "n"),
    ("O", "0"), ("0", "O"), ("o", "0"), ("D", "O"), ("Q", "O"), ("S", "5"), ("5", "S"),
    ("s", "5"), ("B", "8"), ("8", "B"), ("Z", "2"), ("G", "6"), ("e", "c"), ("c", "e"),
    ("h", "b"), ("b", "h"), ("n", "h"), ("u", "v"), ("v", "u"), ("g", "q"), ("q", "g"),
    ("E", "F"), ("F", "E"), ("P", "R"), ("R", "P"), ("U", "V"), ("f", "t"), ("t", "f"),
)  # fmt: skip

_V = "aeiouy"
# Spelling by ear: (pattern, replacement), matched case-insensitively, one site rewritten.
PHONETIC_RULES: tuple[tuple[str, str], ...] = (
    (r"ph", "f"),
    (rf"(?:^|(?<=[{_V}]))f(?=[{_V}])", "ph"),
    (r"ck", "k"),
    (rf"(?<=[{_V}])k\b", "ck"),
    (r"c(?=[aou])", "k"),
    (r"k(?=[aou])", "c"),
    (r"ie\b", "y"),
    (r"(?<=\w)y\b", "ie"),
    (r"ey\b", "y"),
    (r"ei", "ie"),
    (r"ie(?=\w)", "ei"),
    (r"([bcdfgklmnprstz])\1", r"\1"),  # a doubled consonant written once
    (rf"(?<=[{_V}])([bdfglmnprt])(?=[{_V}])", r"\1\1"),  # and the other way round
    (rf"(?<=[{_V}])h\b", ""),  # silent h: Sarah, Hannah
    (rf"(?<=[{_V}])h(?=[^{_V}\W])", ""),  # Johnson, Mohr
    (r"(?<=\bt)h", ""),  # Thomas, Theresa
    (r"(?<=[gr])h", ""),  # Ghislaine, Rhonda
    (r"\bwh", "w"),
    (r"son\b", "sen"),
    (r"sen\b", "son"),
    (r"mann\b", "man"),
    (r"(?<!n)man\b", "mann"),
    (r"dt\b", "tt"),
    (r"tt\b", "dt"),
    (r"z", "s"),
    (rf"(?<=[{_V}])s(?=[{_V}])", "z"),
    (r"(?<=\w)y(?=\w)", "i"),
    (r"x", "ks"),
    (r"qu", "kw"),
    (r"ä", "ae"),
    (r"ö", "oe"),
    (r"ü", "ue"),
    (r"ß", "ss"),
)
# German speakers' v and w sound alike to an English-speaking clerk and the other way round.
GERMAN_RULES: tuple[tuple[str, str], ...] = ((r"v", "w"), (r"w", "v"))


def like_case(ch: str, model: str) -> str:
    return ch.upper() if model.isupper() else ch.lower()


def _word_span(text: str, i: int) -> tuple[int, int]:
    start, end = i, i
    while start > 0 and text[start - 1].isalpha():
        start -= 1
    while end < len(text) and text[end].isalpha():
        end += 1
    return start, end


def _shouting(text: str, i: int) -> bool:
    """Whether the word around i is written in capitals (a single capital is not)."""
    start, end = _word_span(text, i)
    word = text[start:end]
    return len(word) > 1 and word.isupper()


def _editable(text: str, alnum: bool) -> list[int]:
    return [i for i, c in enumerate(text) if (c.isalnum() if alnum else c.isalpha())]


def wrong_key(rng: random.Random, ch: str) -> str:
    """Another key for ch: usually one next to it, of the same sort (letter or digit)."""
    low = ch.lower()
    pool = string.digits if low.isdigit() else string.ascii_lowercase
    near = [c for c in NEIGHBOURS.get(low, "") if c in pool]
    if near and rng.random() < NEIGHBOUR_SHARE:
        return like_case(rng.choice(near), ch)
    return like_case(rng.choice([c for c in pool if c != low]), ch)


def edit(rng: random.Random, text: str, kind: str, *, alnum: bool = False) -> str | None:
    """One typing slip of the given kind at a uniformly chosen letter (or digit, with
    ``alnum``) anywhere in text; capitals stay where the word had them."""
    pos = _editable(text, alnum)
    if len(pos) < 2:
        return None
    if kind == "transpose":
        ok = set(pos)
        pairs = [i for i in pos if i + 1 in ok and text[i].lower() != text[i + 1].lower()]
        if not pairs:
            return None
        i = rng.choice(pairs)
        a, b = text[i], text[i + 1]
        return text[:i] + like_case(b, a) + like_case(a, b) + text[i + 2 :]
    i = rng.choice(pos)
    if kind == "substitute":
        return text[:i] + wrong_key(rng, text[i]) + text[i + 1 :]
    if kind == "delete":
        return _delete(text, i)
    return _insert(rng, text, i)


def _delete(text: str, i: int) -> str:
    rest = text[i + 1 :]
    # Dropping a word's capital leaves the next letter as the word's first: "Ohnson".
    starts_word = _word_span(text, i)[0] == i
    if starts_word and text[i].isupper() and rest[:1].isalpha() and not _shouting(text, i):
        rest = rest[0].upper() + rest[1:]
    return text[:i] + rest


def _insert(rng: random.Random, text: str, i: int) -> str:
    """An extra key before or after text[i]: the same key twice, or (wrong_key) a
    neighbour caught with it, now and then any key."""
    after = rng.random() < 0.5
    new = text[i].lower() if rng.random() < 0.35 else wrong_key(rng, text[i]).lower()
    if _shouting(text, i):
        new = new.upper()
    if after:
        return text[: i + 1] + new + text[i + 1 :]
    if text[i].isupper() and not _shouting(text, i) and _word_span(text, i)[0] == i:
        return text[:i] + new.upper() + text[i].lower() + text[i + 1 :]
    return text[:i] + new + text[i:]


def typo(rng: random.Random, text: str, *, alnum: bool = False) -> tuple[str, str] | None:
    """One typing slip of a kind drawn from EDIT_WEIGHTS: (new text, kind)."""
    kinds = list(EDIT_WEIGHTS)
    while kinds:
        pick = rng.choices(kinds, [w for _, w in kinds])[0]
        kinds.remove(pick)
        out = edit(rng, text, pick[0], alnum=alnum)
        if out is not None and out != text:
            return out, pick[0]
    return None


def ocr(rng: random.Random, text: str) -> str | None:
    """One glyph confusion at a uniformly chosen site where any of OCR_PAIRS applies."""
    sites = [
        (m.start(), old, new)
        for old, new in OCR_PAIRS
        for m in re.finditer(f"(?={re.escape(old)})", text)
    ]
    if not sites:
        return None
    at, old, new = rng.choice(sites)
    return text[:at] + new + text[at + len(old) :]


def phonetic(rng: random.Random, text: str, *, german: bool = False) -> str | None:
    """One spelling-by-ear rewrite at a uniformly chosen site where a rule applies."""
    rules = PHONETIC_RULES + (GERMAN_RULES if german else ())
    sites = [
        (m, repl)
        for pattern, repl in rules
        for m in re.finditer(pattern, text, flags=re.IGNORECASE)
        if m.end() > m.start()
    ]
    rng.shuffle(sites)
    for m, repl in sites:
        new = m.expand(repl).lower()
        matched = m.group(0)
        if matched[:1].isupper() and new:
            new = new.upper() if _shouting(text, m.start()) else new[0].upper() + new[1:]
        out = text[: m.start()] + new + text[m.end() :]
        if out != text and any(c.isalpha() for c in out):
            return out
    return None


def digit_typo(rng: random.Random, text: str, *, skip: int = 0) -> str | None:
    """One digit typed wrong (a neighbouring key, now and then any digit); the first
    ``skip`` digits (a country code) are left alone."""
    pos = [i for i, c in enumerate(text) if c.isdigit()][skip:]
    if not pos:
        return None
    i = rng.choice(pos)
    return text[:i] + wrong_key(rng, text[i]) + text[i + 1 :]


def digit_swap(rng: random.Random, text: str, *, skip: int = 0) -> str | None:
    """Two neighbouring digits typed in the wrong order (separators between them stay)."""
    pos = [i for i, c in enumerate(text) if c.isdigit()][skip:]
    pairs = [(a, b) for a, b in itertools.pairwise(pos) if text[a] != text[b]]
    if not pairs:
        return None
    a, b = rng.choice(pairs)
    chars = list(text)
    chars[a], chars[b] = chars[b], chars[a]
    return "".join(chars)


# --- street types -------------------------------------------------------------------------

# USPS street suffixes and their standard abbreviations, full form first.
_USPS_TEXT = """
Alley Aly Avenue Ave Boulevard Blvd Branch Br Bridge Brg Brook Brk Brooks Brks Burg Bg
Bypass Byp Camp Cp Canyon Cyn Cape Cpe Causeway Cswy Center Ctr Centers Ctrs Circle Cir
Circles Cirs Cliff Clf Cliffs Clfs Club Clb Common Cmn Corner Cor Corners Cors Course Crse
Court Ct Courts Cts Cove Cv Coves Cvs Creek Crk Crescent Cres Crest Crst Crossing Xing
Crossroad Xrd Curve Curv Dale Dl Dam Dm Divide Dv Drive Dr Drives Drs Estate Est Estates Ests
Expressway Expy Extension Ext Extensions Exts Falls Fls Ferry Fry Field Fld Fields Flds
Flat Flt Flats Flts Ford Frd Forest Frst Forge Frg Fork Frk Forks Frks Fort Ft Freeway Fwy
Garden Gdn Gardens Gdns Gateway Gtwy Glen Gln Glens Glns Green Grn Greens Grns Grove Grv
Groves Grvs Harbor Hbr Harbors Hbrs Haven Hvn Heights Hts Highway Hwy Hill Hl Hills Hls
Hollow Holw Inlet Inlt Island Is Islands Iss Junction Jct Junctions Jcts Key Ky Keys Kys
Knoll Knl Knolls Knls Lake Lk Lakes Lks Landing Lndg Lane Ln Light Lgt Lights Lgts Loaf Lf
Lock Lck Locks Lcks Lodge Ldg Manor Mnr Manors Mnrs Meadow Mdw Meadows Mdws Mill Ml Mills Mls
Mission Msn Motorway Mtwy Mount Mt Mountain Mtn Mountains Mtns Neck Nck Orchard Orch
Overpass Opas Parkway Pkwy Parkways Pkwys Passage Psge Pine Pne Pines Pnes Place Pl
Plain Pln Plains Plns Plaza Plz Point Pt Points Pts Port Prt Ports Prts Prairie Pr
Radial Radl Ranch Rnch Rapid Rpd Rapids Rpds Rest Rst Ridge Rdg Ridges Rdgs River Riv
Road Rd Roads Rds Route Rte Shoal Shl Shoals Shls Shore Shr Shores Shrs Skyway Skwy
Spring Spg Springs Spgs Square Sq Squares Sqs Station Sta Stravenue Stra Stream Strm
Street St Streets Sts Summit Smt Terrace Ter Throughway Trwy Trace Trce Track Trak
Trafficway Trfy Trail Trl Tunnel Tunl Turnpike Tpke Underpass Upas Union Un Unions Uns
Valley Vly Valleys Vlys View Vw Views Vws Village Vlg Villages Vlgs Ville Vl Vista Vis
Well Wl Wells Wls
"""
_USPS = _USPS_TEXT.split()
STREET_ABBR = {f.lower(): a for f, a in zip(_USPS[::2], _USPS[1::2], strict=True)}
STREET_FULL = {a.lower(): f for f, a in zip(_USPS[::2], _USPS[1::2], strict=True)}


# --- phone numbers ------------------------------------------------------------------------

US_FORMATS = (
    "({a}) {e}-{l}", "{a}-{e}-{l}", "{a}.{e}.{l}", "+1 {a} {e} {l}", "+1{a}{e}{l}",
    "1-{a}-{e}-{l}", "+1 ({a}) {e}-{l}", "{a}{e}{l}",
)  # fmt: skip


def reformat_phone(rng: random.Random, phone: str, region: str) -> str | None:
    """The same number written another way (spaces, dots, brackets, +country)."""
    import phonenumbers

    digits = re.sub(r"\D", "", phone.split("x")[0])
    if region == "US" and (len(digits) == 10 or (len(digits) == 11 and digits[0] == "1")):
        a, e, line = digits[-10:-7], digits[-7:-4], digits[-4:]
        options = [f.format(a=a, e=e, l=line) for f in US_FORMATS]
    else:
        try:
            number = phonenumbers.parse(phone, region)
        except phonenumbers.NumberParseException:
            return None
        fmt = phonenumbers.PhoneNumberFormat
        options = [phonenumbers.format_number(number, f) for f in (fmt.E164, fmt.INTERNATIONAL)]
        national = phonenumbers.format_number(number, fmt.NATIONAL)
        options += [national, re.sub(r"\D", "", national)]
    options = sorted({o for o in options if o != phone})
    return rng.choice(options) if options else None


def country_code_digits(phone: str, region: str) -> int:
    """How many leading digits are the country code (and the "(0)" after it), which
    nobody mistypes: they are copied from a form's prefix, not typed from memory."""
    digits = re.sub(r"\D", "", phone)
    if phone.lstrip().startswith("+"):
        import phonenumbers

        trunk = 1 if "(0)" in phone else 0
        try:
            return len(str(phonenumbers.parse(phone, region).country_code)) + trunk
        except phonenumbers.NumberParseException:
            return 1 + trunk
    return 1 if region == "US" and len(digits) == 11 and digits[0] == "1" else 0


# --- birth dates ("YYYY-MM-DD") ------------------------------------------------------------


def valid_date(text: str) -> date | None:
    try:
        born = date.fromisoformat(text)
    except ValueError:
        return None
    return born if 1900 <= born.year <= 2030 and len(text) == 10 else None


def corrupt_date(rng: random.Random, kind: str, value: str) -> str | None:
    """Day and month swapped (only where both read as a month), the year one off, or one
    digit typed wrong (``digit_typo``) as long as the result is still a date."""
    born = valid_date(value)
    if born is None:
        return None
    if kind == "day_month_swap":
        ok = born.day <= 12 and born.day != born.month
        return date(born.year, born.day, born.month).isoformat() if ok else None
    if kind == "year_off":
        for delta in rng.sample((-1, 1), 2):
            try:
                return born.replace(year=born.year + delta).isoformat()
            except ValueError:  # 29 February
                continue
        return None
    for _ in range(20):  # one digit typed wrong, as long as the date still exists
        out = digit_typo(rng, value)
        if out and out != value and valid_date(out):
            return out
    return None
