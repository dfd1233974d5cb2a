"""Keys are never stricter than the comparators: one typo leaves a key in common."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tessera.crm.matching.engine import best_score
from tessera.crm.matching.keys import lookup_keys, record_keys
from tessera.crm.matching.values import field_text
from tests.support.matching_rules import standard_rule, stored

RULE = standard_rule("contact")
LOWER = "abcdefghijklmnopqrstuvwxyz"
SUFFIXES = ("Street", "St", "Avenue", "Road", "Place", "Lane", "Drive")


def _word(min_size: int = 3, max_size: int = 10) -> st.SearchStrategy[str]:
    return st.text(LOWER, min_size=min_size, max_size=max_size).map(str.title)


@st.composite
def full_records(draw: st.DrawFn) -> dict[str, str]:
    first, last = draw(_word()), draw(_word(3, 12))
    digits = draw(st.text("0123456789", min_size=7, max_size=7))
    area = draw(st.integers(201, 989))
    return {
        "first_name": first,
        "last_name": last,
        "email": f"{first.lower()}.{last.lower()}@{draw(_word(3, 8)).lower()}.com",
        "phone": f"({area}) {digits[:3]}-{digits[3:]}",
        "company": f"{draw(_word())} {draw(_word())}",
        "title": draw(st.sampled_from(("Engineer", "Manager", "Director", "Nurse"))),
        "street": f"{draw(st.integers(1, 9999))} {draw(_word())} {draw(st.sampled_from(SUFFIXES))}",
        "city": draw(_word(4, 12)),
        "postal_code": draw(st.text("0123456789", min_size=5, max_size=5)),
        "country": "United States",
    }


@st.composite
def partial_records(draw: st.DrawFn) -> dict[str, str]:
    """A full record with any of its optional fields left out (people's records are)."""
    record = draw(full_records())
    optional = ("email", "phone", "company", "title", "street", "city", "postal_code")
    for name in draw(st.sets(st.sampled_from(optional))):
        record[name] = ""
    return record


@st.composite
def one_typo(draw: st.DrawFn, record: dict[str, str]) -> dict[str, str]:
    """``record`` with one character inserted, deleted, replaced or two swapped, anywhere
    in one of its non-blank fields."""
    name = draw(st.sampled_from(sorted(f for f, v in record.items() if v and f != "country")))
    value = record[name]
    i = draw(st.integers(0, len(value) - 1))
    char = draw(st.sampled_from(LOWER + "0123456789"))
    kind = draw(st.sampled_from(("insert", "delete", "substitute", "transpose")))
    if kind == "insert":
        edited = value[:i] + char + value[i:]
    elif kind == "delete":
        edited = value[:i] + value[i + 1 :]
    elif kind == "substitute":
        edited = value[:i] + char + value[i + 1 :]
    else:
        j = min(i, len(value) - 2)
        edited = value[:j] + value[j + 1 : j + 2] + value[j : j + 1] + value[j + 2 :]
    assume(edited != value and field_text(edited))
    return {**record, name: edited}


def _share_a_key(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether a lookup of ``b`` meets the keys stored for ``a``."""
    return bool(record_keys([RULE], a) & lookup_keys([RULE], b)[0])


# --- acronyms: looked up under the other prefix -----------------------------------------

ADA = {"first_name": "Ada", "last_name": "Byron", "company": "Advanced Micro Devices"}


def test_a_company_written_as_its_acronym_finds_the_full_name() -> None:
    assert _share_a_key(ADA, {**ADA, "company": "AMD"})


def test_a_full_company_name_finds_its_acronym() -> None:
    assert _share_a_key({**ADA, "company": "AMD"}, ADA)


def test_two_names_of_several_words_do_not_meet_by_their_initials() -> None:
    # Same last name and company initials, another first name: nothing the rule accepts.
    other = {"first_name": "Mary", "last_name": "Byron", "company": "Apex Media Design"}
    assert not _share_a_key(ADA, other)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_one_typo_anywhere_in_a_full_record_leaves_a_key_in_common(data: st.DataObject) -> None:
    original = data.draw(full_records())
    edited = data.draw(one_typo(original))
    assert _share_a_key(original, edited)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_typo_the_rule_forgives_always_leaves_a_key_in_common(data: st.DataObject) -> None:
    original = data.draw(partial_records())
    edited = data.draw(one_typo(original))
    assume(best_score(RULE, edited, stored(original)) is not None)
    assert _share_a_key(original, edited)
