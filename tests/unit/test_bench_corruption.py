"""The realistic corruption model of the matching benchmark (bench/corruption.py)."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest
from bench import corruption as bc
from bench import corruption_text as ct
from bench.people import PeopleFactory, Person

SAMPLES = 400


def _run(seed: int) -> list[tuple[Person, dict[str, str], list[str]]]:
    factory = PeopleFactory(seed, birthdates=True)
    damager = bc.RealisticDamager(random.Random(seed), factory)
    out = []
    for _ in range(SAMPLES):
        person = factory.person()
        record, tags = damager.damage(person)
        out.append((person, record, tags))
    return out


def _negatives(kind: str) -> list[tuple[Person, dict[str, str]]]:
    factory = PeopleFactory(3, birthdates=True)
    damager = bc.RealisticDamager(random.Random(3), factory)
    out = []
    for _ in range(200):
        person = factory.person()
        record, tags = damager.hard_negative(person)
        if tags == [f"negative:{kind}"]:
            out.append((person, record))
    return out


@pytest.fixture(scope="module")
def duplicates() -> list[tuple[Person, dict[str, str], list[str]]]:
    return _run(1)


@pytest.fixture(scope="module")
def relatives() -> list[tuple[Person, dict[str, str]]]:
    return _negatives("relative")


@pytest.fixture(scope="module")
def namesakes() -> list[tuple[Person, dict[str, str]]]:
    return _negatives("namesake")


def _tagged(duplicates: list, tag: str) -> list[tuple[str, str]]:
    field = tag.split(":")[0]
    return [(p.values[field], r[field]) for p, r, tags in duplicates if tag in tags]


# --- duplicates ----------------------------------------------------------------------------


def test_every_duplicate_has_one_to_three_tags(duplicates: list) -> None:
    assert {len(tags) for _, _, tags in duplicates} <= {1, 2, 3}


def test_duplicates_have_one_two_and_three_damaged_fields(duplicates: list) -> None:
    assert {len(tags) for _, _, tags in duplicates} == {1, 2, 3}


def test_tags_name_a_field_and_one_of_its_kinds(duplicates: list) -> None:
    allowed = {f"{f}:{k}" for f, kinds in bc.KINDS.items() for k, _ in kinds if k != "typo"}
    allowed |= {f"{f}:{e}" for f in bc.KINDS for e, _ in ct.EDIT_WEIGHTS}
    assert {t for _, _, tags in duplicates for t in tags} <= allowed


def test_each_field_is_damaged_at_most_once(duplicates: list) -> None:
    fields = [[t.split(":")[0] for t in tags] for _, _, tags in duplicates]
    assert all(len(set(f)) == len(f) for f in fields)


def test_each_tagged_field_differs_from_the_source(duplicates: list) -> None:
    for person, record, tags in duplicates:
        for tag in tags:
            field = "first_name" if tag == "name:swap" else tag.split(":")[0]
            assert record.get(field) != person.values[field], (tag, person.values, record)


def test_untagged_fields_keep_the_source_value(duplicates: list) -> None:
    for person, record, tags in duplicates:
        touched = {t.split(":")[0] for t in tags}
        if "name" in touched:
            touched |= {"first_name", "last_name"}
        kept = {k: v for k, v in person.values.items() if v and k not in touched}
        assert kept == {k: v for k, v in record.items() if k not in touched}


def test_blank_fields_are_dropped(duplicates: list) -> None:
    assert all(all(record.values()) for _, record, _ in duplicates)


def test_missing_tags_drop_the_field(duplicates: list) -> None:
    missing = [(t, r) for _, r, tags in duplicates for t in tags if t.endswith(":missing")]
    assert missing
    assert all(t.split(":")[0] not in r for t, r in missing)


def test_a_swap_exchanges_first_and_last_name(duplicates: list) -> None:
    swapped = [(p.values, r) for p, r, tags in duplicates if "name:swap" in tags]
    assert swapped
    assert all(
        (r["first_name"], r["last_name"]) == (v["last_name"], v["first_name"]) for v, r in swapped
    )


def test_names_and_address_are_damaged_more_often_than_email(duplicates: list) -> None:
    fields = Counter(t.split(":")[0] for _, _, tags in duplicates for t in tags)
    assert min(fields["last_name"], fields["street"]) > fields["email"]


def test_every_field_weight_is_used(duplicates: list) -> None:
    fields = {t.split(":")[0] for _, _, tags in duplicates for t in tags}
    assert fields == set(bc.FIELD_WEIGHTS)


def test_nicknames_are_known_forms_of_the_name(duplicates: list) -> None:
    from nicknames import NickNamer

    namer = NickNamer()
    for source, new in _tagged(duplicates, "first_name:nickname"):
        known = namer.nicknames_of(source.lower()) | namer.canonicals_of(source.lower())
        assert new.lower() in known


def test_initials_are_one_capital_and_a_dot_or_not(duplicates: list) -> None:
    initials = _tagged(duplicates, "first_name:initial")
    assert initials
    assert all(re.fullmatch(r"[A-Z]\.?", new) for _, new in initials)


def test_a_provider_change_keeps_the_local_part(duplicates: list) -> None:
    changed = _tagged(duplicates, "email:provider")
    assert changed
    assert all(a.split("@")[0] == b.split("@")[0] for a, b in changed)


def test_email_typos_keep_the_domain(duplicates: list) -> None:
    typos = [pair for e, _ in ct.EDIT_WEIGHTS for pair in _tagged(duplicates, f"email:{e}")]
    assert typos
    assert all(a.split("@")[1] == b.split("@")[1] for a, b in typos)


def test_phone_formats_keep_the_digits(duplicates: list) -> None:
    changed = _tagged(duplicates, "phone:format")
    assert changed
    assert all(re.sub(r"\D", "", a)[-9:] == re.sub(r"\D", "", b)[-9:] for a, b in changed)


def test_the_same_seed_gives_the_same_duplicates(duplicates: list) -> None:
    assert _run(1)[:50] == duplicates[:50]


def test_another_seed_gives_other_duplicates(duplicates: list) -> None:
    assert [t for *_, t in _run(2)[:50]] != [t for *_, t in duplicates[:50]]


# --- character edits -----------------------------------------------------------------------


def _edits(text: str, kind: str, n: int = 300) -> list[str]:
    rng = random.Random(7)
    return [out for _ in range(n) if (out := ct.edit(rng, text, kind)) is not None]


def test_a_transpose_keeps_the_letters() -> None:
    assert all(sorted(out.lower()) == sorted("johnson") for out in _edits("Johnson", "transpose"))


def test_a_transpose_changes_the_value() -> None:
    assert "Johnson" not in _edits("Johnson", "transpose")


def test_deletions_reach_the_first_letter() -> None:
    assert "Ohnson" in _edits("Johnson", "delete")


def test_deletions_reach_the_last_letter() -> None:
    assert "Johnso" in _edits("Johnson", "delete")


def test_substitutions_reach_the_first_and_last_letter() -> None:
    outs = _edits("Johnson", "substitute")
    assert any(o[0] != "J" for o in outs)
    assert any(o[-1] != "n" for o in outs)


def test_insertions_reach_both_ends() -> None:
    outs = _edits("Johnson", "insert")
    assert any(o[1:] == "johnson" for o in outs)
    assert any(o.startswith("Johnson") for o in outs)


def test_an_edit_keeps_the_capital_at_the_start() -> None:
    outs = [o for kind in ("delete", "insert", "transpose") for o in _edits("Johnson", kind)]
    assert all(o[0].isupper() and o[1:].islower() for o in outs)


def test_substitutions_are_mostly_keyboard_neighbours() -> None:
    outs = _edits("kkkkkkkk", "substitute", 500)
    new = [c for o in outs for c in o if c != "k"]
    assert sum(c in ct.NEIGHBOURS["k"] for c in new) / len(new) > 0.7


def test_neighbours_include_the_rows_above_and_below() -> None:
    assert set(ct.NEIGHBOURS["s"]) == set("awedzx")


def test_ocr_reads_rn_as_m() -> None:
    rng = random.Random(1)
    assert "Bums" in {ct.ocr(rng, "Burns") for _ in range(200)}


def test_phonetic_writes_ph_as_f() -> None:
    rng = random.Random(1)
    assert "Filip" in {ct.phonetic(rng, "Philip") for _ in range(200)}


def test_phonetic_swaps_v_and_w_only_in_german_names() -> None:
    rng = random.Random(1)
    english = {ct.phonetic(rng, "Wolf") for _ in range(200)}
    german = {ct.phonetic(rng, "Wolf", german=True) for _ in range(200)}
    assert "Volf" not in english
    assert "Volf" in german


def test_a_digit_swap_exchanges_two_neighbouring_digits() -> None:
    rng = random.Random(1)
    outs = {ct.digit_swap(rng, "12345") for _ in range(100)}
    assert outs == {"21345", "13245", "12435", "12354"}


def test_a_phone_typo_spares_the_country_code() -> None:
    rng = random.Random(1)
    outs = [ct.digit_typo(rng, "+1 589 414 1537", skip=1) or "" for _ in range(200)]
    assert all(o.startswith("+1 ") for o in outs)


# --- dates, streets, companies -------------------------------------------------------------


def test_day_and_month_swap() -> None:
    assert ct.corrupt_date(random.Random(1), "day_month_swap", "1980-03-07") == "1980-07-03"


def test_no_day_month_swap_when_the_day_cannot_be_a_month() -> None:
    assert ct.corrupt_date(random.Random(1), "day_month_swap", "1980-03-17") is None


def test_the_year_is_one_off() -> None:
    assert ct.corrupt_date(random.Random(1), "year_off", "1980-03-17") in {
        "1979-03-17",
        "1981-03-17",
    }


def test_a_date_digit_typo_is_still_a_date() -> None:
    rng = random.Random(1)
    outs = [ct.corrupt_date(rng, "digit_typo", "1980-03-17") for _ in range(200)]
    assert all(o and ct.valid_date(o) and o != "1980-03-17" for o in outs)


def test_street_words_merge() -> None:
    out = bc.merge_words(random.Random(1), "12 Hawken Street", capitals_only=True)
    assert out in {"12 Hawkenstreet", "12 HawkenStreet"}


def test_a_compound_street_word_splits() -> None:
    assert bc.split_word(random.Random(1), "4 Westbrook Road", german=False) == "4 West Brook Road"


def test_a_street_type_is_abbreviated() -> None:
    assert bc.abbreviate_street(random.Random(1), "12 Main Street") in {"12 Main St", "12 Main St."}


def test_a_street_type_is_written_out() -> None:
    assert bc.abbreviate_street(random.Random(1), "12 Main Ave") == "12 Main Avenue"


def test_a_house_number_change_keeps_the_street_name() -> None:
    rng = random.Random(1)
    outs = [bc.change_house_number(rng, "120 Main Street Apt. 4") or "" for _ in range(50)]
    assert all(o.endswith(" Main Street Apt. 4") and not o.startswith("120 ") for o in outs)


def test_a_legal_suffix_is_dropped() -> None:
    assert bc.toggle_legal_suffix(random.Random(1), "Acme, Inc.", "en_US") == "Acme"


def test_a_legal_suffix_is_added() -> None:
    out = bc.toggle_legal_suffix(random.Random(1), "Acme", "de_DE") or ""
    assert out.startswith("Acme ")
    assert len(out) > len("Acme ")


# --- hard negatives ------------------------------------------------------------------------


def test_both_kinds_of_hard_negative_occur(relatives: list, namesakes: list) -> None:
    assert relatives
    assert namesakes


def test_a_relative_keeps_the_last_name_and_address(relatives: list) -> None:
    keys = ("last_name", "street", "city", "postal_code")
    assert all(all(r[k] == p.values[k] for k in keys) for p, r in relatives)


def test_a_relative_has_another_first_name(relatives: list) -> None:
    assert all(r["first_name"] != p.values["first_name"] for p, r in relatives)


def test_a_relative_has_another_email(relatives: list) -> None:
    assert all(r.get("email") != p.values.get("email") for p, r in relatives)


def test_a_relative_has_another_birthdate(relatives: list) -> None:
    dated = [(p, r) for p, r in relatives if p.values.get("birthdate")]
    assert dated
    assert all(r["birthdate"] != p.values["birthdate"] for p, r in dated)


def test_some_relatives_share_the_home_phone(relatives: list) -> None:
    assert any(r.get("phone") == p.values.get("phone") for p, r in relatives)


def test_a_namesake_keeps_both_names(namesakes: list) -> None:
    names = ("first_name", "last_name")
    assert all(all(r[k] == p.values[k] for k in names) for p, r in namesakes)


def test_a_namesake_has_another_email_phone_and_address(namesakes: list) -> None:
    keys = ("email", "phone", "street", "postal_code")
    assert all(all(r.get(k) != p.values.get(k) for k in keys) for p, r in namesakes)
