"""Field comparators and normalisation for duplicate matching (no database)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from pytest_django.fixtures import Settings

from tessera.crm.matching import comparators as c
from tessera.crm.matching import normalize as n
from tessera.crm.matching import values as k


@pytest.fixture(autouse=True)
def _no_extra_variants() -> Iterator[None]:
    n.set_extra_variants([])
    yield
    n.set_extra_variants([])


def test_registry_names_every_method() -> None:
    assert set(c.METHODS) == {
        "exact",
        "email",
        "first_name",
        "last_name",
        "company",
        "title",
        "city",
        "phone",
        "street",
        "postal_code",
        "website",
        "edit_distance",
        "jaro_winkler",
    }
    assert c.METHODS["first_name"] is c.first_name
    assert c.METHODS["postal_code"] is c.postal_code


@pytest.mark.parametrize(
    ("method", "a", "b"),
    [
        ("exact", "Müller", "Muller"),
        ("email", "Bob@Example.com", "bob@example.com"),
        ("first_name", "Ann", "Ann"),
        ("last_name", "Smith", "Smith"),
        ("company", "Acme", "Acme"),
        ("title", "Engineer", "engineer"),
        ("city", "Boston", "BOSTON"),
        ("phone", "415-555-1234", "415-555-1234"),
        ("street", "1 Main St", "1 Main St"),
        ("postal_code", "94105", "94105"),
        ("website", "acme.com", "ACME.com"),
        ("edit_distance", "kitten", "Kitten"),
        ("jaro_winkler", "martha", "Martha"),
    ],
)
def test_every_method_scores_identical_values_100_as_an_int(method: str, a: str, b: str) -> None:
    score = c.METHODS[method](a, b)
    assert score == 100
    assert type(score) is int


@pytest.mark.parametrize(
    ("method", "a", "b", "at_most"),
    [
        ("exact", "Smith", "Smyth", 0),
        ("email", "alice@example.com", "bob@example.com", 0),
        ("first_name", "Mary", "Peter", 50),
        ("last_name", "Jones", "Smith", 49),
        ("last_name", "Garcia", "Nguyen", 30),
        ("company", "Acme", "Globex", 40),
        ("company", "Apple", "Oracle", 69),
        ("title", "Engineer", "Accountant", 40),
        ("city", "Boston", "Chicago", 30),
        ("phone", "415-555-1234", "212-867-5309", 10),
        ("phone", "+44 20 7946 0958", "+1 212 867 5309", 0),
        ("street", "123 Main St", "456 Oak Ave", 50),
        ("postal_code", "94105", "10001", 10),
        ("postal_code", "SW1A 1AA", "EC1A 1BB", 50),
        ("website", "acme.com", "acme.org", 0),
        ("edit_distance", "kitten", "sitting", 60),
        ("jaro_winkler", "abcdef", "uvwxyz", 10),
    ],
)
def test_clearly_different_values_score_low(method: str, a: str, b: str, at_most: int) -> None:
    score = c.METHODS[method](a, b)
    assert 0 <= score <= at_most
    assert c.METHODS[method](b, a) == score  # symmetric


# --- first name --------------------------------------------------------------------


@pytest.mark.parametrize(("a", "b"), [("Jonathan", "J"), ("J.", "John"), ("j", "JOHN")])
def test_first_name_initial_matches_full_name(a: str, b: str) -> None:
    assert c.first_name(a, b) == 100
    assert c.first_name(b, a) == 100


def test_first_name_initial_must_be_the_first_letter() -> None:
    assert c.first_name("K", "Jonathan") < 85


@pytest.mark.parametrize(("a", "b"), [("Robert", "Bob"), ("Bob", "Robert"), ("William", "Bill")])
def test_first_name_nickname_variant(a: str, b: str) -> None:
    assert c.first_name(a, b) == 100


@pytest.mark.parametrize(("a", "b"), [("José", "Jose"), ("ZOË", "zoe"), ("  Ann  ", "ann")])
def test_first_name_unicode_and_case_are_folded(a: str, b: str) -> None:
    assert c.first_name(a, b) == 100


def test_first_name_fuzzy() -> None:
    assert c.first_name("Catherine", "Katherine") >= 85
    assert c.first_name("Jon", "John") >= 85
    assert c.first_name("Jonathan", "Michael") < 60


def test_an_unregistered_variant_is_not_a_match() -> None:
    assert c.first_name("Xander", "Alexander") < 85


def test_a_registered_admin_variant_matches() -> None:
    n.set_extra_variants([("Xander", "Alexander")])
    assert c.first_name("Xander", "Alexander") == 100
    assert c.first_name("alexander", "XANDER") == 100  # symmetric and folded


def test_a_registered_admin_variant_joins_the_name_variants_and_initials() -> None:
    n.set_extra_variants([("Xander", "Alexander")])
    assert "alexander" in n.name_variants("Xander")
    assert n.first_initials("Xander") == {"x", "a"}


def test_a_cleared_admin_variant_no_longer_matches() -> None:
    before = c.first_name("Xander", "Alexander")
    n.set_extra_variants([("Xander", "Alexander")])
    n.set_extra_variants([])
    assert c.first_name("Xander", "Alexander") == before
    assert "alexander" not in n.name_variants("Xander")
    assert n.first_initials("Xander") == {"x"}


def test_set_extra_variants_replaces_previous_pairs() -> None:
    n.set_extra_variants([("Xander", "Alexander")])
    n.set_extra_variants([("Zed", "Zedekiah")])
    assert "alexander" not in n.name_variants("Xander")
    assert "zedekiah" in n.name_variants("zed")
    assert "zed" in n.name_variants("Zedekiah")


# --- last name ---------------------------------------------------------------------


def test_last_name_phonetic() -> None:
    assert c.last_name("Smith", "Smyth") >= 90


def test_a_neighbouring_key_costs_half_an_edit() -> None:
    assert c.keyboard_distance("Smith", "Smoth") == 90  # "o" sits next to "i"


def test_a_far_key_costs_a_full_edit() -> None:
    assert c.keyboard_distance("Smith", "Smzth") == 80


def test_a_transposition_is_one_edit_not_two_substitutions() -> None:
    assert c.keyboard_distance("Smith", "Smiht") == 80


def test_last_name_typos() -> None:
    assert c.last_name("Smith", "Smiht") >= 80
    assert c.last_name("Johnson", "Jonson") >= 85


def test_last_name_unicode() -> None:
    assert c.last_name("Müller", "MULLER") == 100
    assert c.last_name("Strauß", "Strauss") == 100
    assert c.last_name("Søren", "Soren") == 100


def test_keyboard_distance_has_a_floor_of_zero() -> None:
    assert c.keyboard_distance("q", "mmmmmmmm") == 0
    # "a" and "z" are neighbours, so one of the eight edits is cheap.
    assert c.keyboard_distance("a", "zzzzzzzz") == 6


# --- company and title -------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Advanced Micro Devices", "AMD"),
        ("AMD", "Advanced Micro Devices, Inc."),
        ("IBM", "International Business Machines Corp"),
        ("Acme Inc", "ACME, Incorporated"),
        ("Acme Co. Ltd.", "acme"),
        ("Microsoft Corp", "Microsoft Corporation"),
        ("Bank of America", "BOA"),
    ],
)
def test_company_full_matches(a: str, b: str) -> None:
    assert c.company(a, b) == 100
    assert c.company(b, a) == 100


def test_company_fuzzy() -> None:
    assert c.company("Acme Widgets", "Widgets Acme") >= 90
    assert c.company("Acme Widget Co", "Acme Widgets") >= 70
    assert c.company("Advanced Micro Devices", "AMC") < 70


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("VP", "Vice President"),
        ("CEO", "Chief Executive Officer"),
        ("VP of Sales", "Vice President, Sales"),
        ("V.P. Sales", "Vice President of Sales"),
    ],
)
def test_title_acronyms(a: str, b: str) -> None:
    assert c.title(a, b) == 100
    assert c.title(b, a) == 100


def test_title_token_similarity() -> None:
    assert c.title("Director of Marketing", "Marketing Director") >= 50
    assert c.title("CTO", "Chief Executive Officer") < 50


# --- city, phone, street, postal code ----------------------------------------------


def test_city() -> None:
    assert c.city("San Francisco", "San Fransisco") >= 85
    assert c.city("St. Louis", "Saint Louis") == 100
    assert c.city("München", "Munchen") == 100
    assert c.city("Springfield", "Smithfield") < 85


def test_phone_sections_weighted() -> None:
    assert c.phone("1-415-555-1234", "1-415-555-5678") == 90
    assert c.phone("+1 (415) 555-1234", "415.555.1234") == 100
    # Area code and next three agree, the country differs: 50 + 30 + 10 (last four).
    assert c.phone("+44 20 7946 0958", "+44 20 7946 1111") == 90
    assert c.phone("415-555-1234", "415-999-1234") == 70


def test_phone_without_digits_falls_back_to_exact() -> None:
    assert c.phone("n/a", "unknown") == 0
    assert c.phone("n/a", "N/A") == 100


def test_phone_unparseable_compares_digit_sections() -> None:
    # Too many digits to parse: compared by position from the right.
    long_a = "+999 000 415 555 1234 5678 9"
    assert n.phone_sections(long_a)[3] == "6789"
    assert c.phone(long_a, long_a) == 100


def test_phone_sections_shapes() -> None:
    assert n.phone_sections("1-415-555-1234") == ("1", "415", "555", "1234")
    assert n.phone_sections("+44 20 7946 0958") == ("44", "20", "7946", "0958")
    assert n.phone_sections("020 7946 0958", region="GB") == ("44", "20", "7946", "0958")
    assert n.phone_sections("") == ("", "", "", "")


def test_phone_e164_reads_a_local_number_in_its_region() -> None:
    assert n.phone_e164("030 1234567", "DE") == "+49301234567"


def test_phone_e164_is_blank_when_not_a_possible_number() -> None:
    assert n.phone_e164("12", "US") == ""


def test_phone_key_reads_a_local_number_in_its_region() -> None:
    assert n.phone_key("030 1234567", "DE") == n.phone_key("+49 30 1234567")


@pytest.mark.parametrize("country", ["DE", "de", " DEU ", "Germany", "GERMANY"])
def test_country_region_reads_codes_and_english_names(country: str) -> None:
    assert k.country_region(country) == "DE"


@pytest.mark.parametrize(
    ("country", "region"),
    [("UK", "GB"), ("United Kingdom", "GB"), ("USA", "US"), ("U.S.A.", "US"),
     ("Bosnia and Herzegovina", "BA"), ("AND", "AD")],
)  # fmt: skip
def test_country_region_reads_aliases(country: str, region: str) -> None:
    assert k.country_region(country) == region


@pytest.mark.parametrize("country", ["", "Narnia", "n/a", "Antarctica"])
def test_country_region_is_blank_for_no_known_country(country: str) -> None:
    assert k.country_region(country) == ""


def test_unknown_country_reads_in_the_default_region(settings: Settings) -> None:
    settings.TESSERA_DEFAULT_REGION = "DE"
    assert k.record_region("Narnia") == "DE"


def test_phone_comparator_sees_both_records_in_their_regions() -> None:
    local = k.record_phone("030 1234567", "DE")
    assert c.phone(local, k.record_phone("+49 30 1234567", "")) == 100


def test_record_phone_keeps_the_text_of_an_impossible_number() -> None:
    assert k.record_phone("12", "US") == "12"


@pytest.mark.parametrize(
    ("a", "b", "score"),
    [
        ("123 Main Street", "123 Main St.", 100),
        # No unit on either side: number, name and suffix share the score (20 + 50 + 5).
        ("123 Main St", "125 Main St", 73),  # (50 + 5) / 75
        ("123 N. Main St, Apt 4B", "123 North Main Street #4B", 100),
        ("1 Fifth Avenue", "1 5th Ave", 100),
        ("123 Main St Suite 200", "123 Main St", 75),
        ("123 Main St", "123 Mian St", 83),  # (20 + 50 * 3/4 + 5) / 75
        ("123 Main St", "123 Maine St", 87),
    ],
)
def test_street_sections_weighted(a: str, b: str, score: int) -> None:
    assert c.street(a, b) == score


@pytest.mark.parametrize(
    ("street", "sections"),
    [
        ("123 N. Main Street, Apt 4B", ("123", "n main", "st", "4b")),
        ("Apt 4, 123 Main St", ("123", "main", "st", "4")),
        ("123 Main St 4B", ("123", "main", "st", "4b")),
        ("123 Park Rd NW", ("123", "park nw", "rd", "")),
        ("", ("", "", "", "")),
    ],
)
def test_street_sections_parse(street: str, sections: tuple[str, str, str, str]) -> None:
    assert n.street_sections(street) == sections


def test_normalize_street_writes_the_sections_back_in_order() -> None:
    assert n.normalize_street("123 N. Main Street, Apt 4B") == "123 n main st #4b"


def test_postal_code() -> None:
    assert c.postal_code("94105", "94105-1234") == 100
    assert c.postal_code("94105-1234", "94105 1234") == 100
    assert c.postal_code("94105-1234", "94105-9999") == 90
    assert c.postal_code("94105", "94107") <= 10
    assert c.postal_code("SW1A 1AA", "sw1a1aa") == 100
    assert 50 < c.postal_code("K1A 0B1", "K1A 0B2") < 90


def test_website_compares_the_domain_only() -> None:
    assert c.website("https://www.Acme.com/about", "acme.com") == 100
    assert c.website("http://user@WWW.acme.com:8080/x?y=1", "acme.com.") == 100


def test_website_on_a_subdomain_is_another_site() -> None:
    assert c.website("shop.acme.com", "acme.com") == 0


def test_email_ignores_case_and_surrounding_space() -> None:
    assert c.email("  Bob@Example.COM ", "bob@example.com") == 100


def test_edit_distance_scores_the_share_of_characters_kept() -> None:
    assert c.edit_distance("kitten", "sitting") == 57


def test_jaro_winkler_scores_a_transposition_high() -> None:
    assert c.jaro_winkler("martha", "marhta") == 96


def test_exact_compares_folded_values() -> None:
    assert c.exact("José", "JOSE") == 100


# --- normalisation -----------------------------------------------------------------


def test_fold_strips_accents_case_and_extra_space() -> None:
    assert n.fold("  José  MÜLLER\tStraße ") == "jose muller strasse"
    assert n.fold("Søren Ærø") == "soren aero"
    assert n.fold("") == ""


def test_name_tokens_drop_punctuation() -> None:
    assert n.name_tokens("O'Brien-Smith, Jr.") == ["obrien", "smith", "jr"]


def test_normalize_email_lowercases_and_trims() -> None:
    assert n.normalize_email("  A@B.COM ") == "a@b.com"


def test_normalize_phone_writes_e164() -> None:
    assert n.normalize_phone("(415) 555-1234") == "+14155551234"


def test_normalize_phone_keeps_an_impossible_number_as_typed() -> None:
    assert n.normalize_phone("12") == "12"


def test_normalize_postal_uppercases_without_spaces() -> None:
    assert n.normalize_postal("sw1a 1aa") == "SW1A1AA"


def test_normalize_company_drops_articles_legal_forms_and_dots() -> None:
    assert n.normalize_company("The Acme Company, Inc.") == "acme"
    assert n.normalize_company("A.M.D. Inc") == "amd"


def test_website_domain_drops_scheme_www_port_and_path() -> None:
    assert n.website_domain("HTTPS://www.Acme.com:443/a/b") == "acme.com"


def test_first_initials_include_the_nicknames_initials() -> None:
    assert {"b", "r"} <= n.first_initials("Bob")
    assert n.first_initials("Jonathan") == {"j"}


def test_last_name_phonetics_join_spellings_that_sound_alike() -> None:
    assert n.last_name_phonetics("Smith") == {"SM0", "XMT"}
    assert n.last_name_phonetics("Smyth") & n.last_name_phonetics("Smith")
    assert n.last_name_phonetics("Mc Donald") == n.last_name_phonetics("McDonald")


def test_company_key_joins_the_leading_letters_of_the_first_words() -> None:
    assert n.company_key("Advanced Micro Devices Inc") == "advanmicro"
    assert n.company_key("ACME, Inc.") == "acme"


def test_phone_key_is_the_country_and_area_code_and_exchange() -> None:
    assert n.phone_key("+1 (415) 555-1234") == "+1415555"
    assert n.phone_key("1-415-555-5678") == n.phone_key("415.555.1234")


def test_phone_key_of_an_impossible_number_is_empty() -> None:
    assert n.phone_key("12345") == ""


def test_postal_key_is_the_code_without_its_extension() -> None:
    assert n.postal_key("94105-1234") == "94105"
    assert n.postal_key("sw1a 1aa") == "SW1A1AA"


def test_city_key_folds_spelling_and_abbreviations() -> None:
    assert n.city_key("San Francisco") == "sanfrancisco"
    assert n.city_key("St. Louis") == n.city_key("saint louis")


@pytest.mark.parametrize(
    ("helper", "empty"),
    [
        (n.fold, ""),
        (n.name_tokens, []),
        (n.name_variants, frozenset()),
        (n.first_initials, frozenset()),
        (n.last_name_phonetics, frozenset()),
        (n.company_key, ""),
        (n.phone_key, ""),
        (n.postal_key, ""),
        (n.city_key, ""),
        (n.normalize_email, ""),
        (n.normalize_phone, ""),
        (n.website_domain, ""),
        (n.normalize_street, ""),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
@pytest.mark.parametrize("blank", ["", "   ", "\t"])
def test_helpers_on_blank_values_are_empty(
    helper: Callable[[str], object], empty: object, blank: str
) -> None:
    assert helper(blank) == empty


def test_street_with_its_direction_left_out_still_matches() -> None:
    assert c.street("123 N Main St", "123 Main St") >= 80


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("123 N Main St", "123 S Main St"),
        ("12 Avenue C", "12 Avenue D"),
        ("5 5th Ave", "5 6th Ave"),
    ],
)
def test_streets_told_apart_by_a_short_word_do_not_match(a: str, b: str) -> None:
    assert c.street(a, b) < 80


def test_first_names_that_only_sound_alike_do_not_match() -> None:
    assert c.first_name("Tanya", "Dawn") < 85
