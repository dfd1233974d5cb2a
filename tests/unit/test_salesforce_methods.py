"""The standard matching methods against Salesforce's documented examples (no database).

Each test names what the documentation says; the comment above it gives the page title.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tessera.crm.matching import comparators as c
from tessera.crm.matching import normalize as n
from tessera.crm.matching.standard import PERSON_CRITERIA


@pytest.fixture(autouse=True)
def _no_extra_variants() -> Iterator[None]:
    n.set_extra_variants([])
    yield
    n.set_extra_variants([])


def threshold(method: str) -> int:
    """The standard contact rule's threshold for a method."""
    return next(t for _, _, m, t in PERSON_CRITERIA if m == method)


# --- exact -------------------------------------------------------------------------


# Matching Algorithms Used with Matching Methods: Exact.
def test_exact_salesforce_com_and_salesforce_are_not_a_match() -> None:
    assert c.exact("salesforce.com", "Salesforce") == 0


# Matching Algorithms Used with Matching Methods: compared fields aren't case sensitive.
def test_exact_comparison_is_not_case_sensitive() -> None:
    assert c.exact("Salesforce", "SALESFORCE") == 100


# --- edit distance -----------------------------------------------------------------


# Matching Algorithms Used with Matching Methods: Edit Distance.
def test_edit_distance_vp_sales_and_vp_of_sales_score_73() -> None:
    assert c.edit_distance("VP Sales", "VP of Sales") == 73


# --- first name --------------------------------------------------------------------


# Matching Algorithms Used with Matching Methods: Initials.
def test_initials_jonathan_and_j_score_100() -> None:
    assert c.first_name("Jonathan", "J") == 100


# Matching Algorithms Used with Matching Methods: Name Variant.
@pytest.mark.parametrize(("a", "b"), [("Bob", "Robert"), ("Robert", "Bob")])
def test_name_variant_bob_and_robert_score_100(a: str, b: str) -> None:
    assert c.first_name(a, b) == 100


# Standard Contact Matching Rule and Standard Lead Matching Rule: First_Name (1,1).
def test_first_name_key_of_john_is_j() -> None:
    assert "j" in n.first_initials("John")


# --- last name ---------------------------------------------------------------------


# Standard Contact Matching Rule and Standard Lead Matching Rule: Last_Name, double
# metaphone applied.
@pytest.mark.parametrize(("last_name", "code"), [("Doe", "T"), ("Benioff", "PNF")])
def test_last_name_key_is_its_double_metaphone(last_name: str, code: str) -> None:
    assert code in n.last_name_phonetics(last_name)


# --- company -----------------------------------------------------------------------


# Matching Algorithms Used with Matching Methods: Acronym.
def test_acronym_advanced_micro_devices_and_amd_score_100() -> None:
    assert c.company("Advanced Micro Devices", "AMD") == 100


# Matching Methods Used in Matching Rules: Inc and Corp are removed before comparing.
@pytest.mark.parametrize(
    ("a", "b"), [("Intel Corporation", "Intel"), ("Acme Inc", "Acme"), ("Acme Corp", "Acme")]
)
def test_company_words_such_as_inc_and_corp_are_removed(a: str, b: str) -> None:
    assert c.company(a, b) == 100


# Matching Methods Used in Matching Rules: IBM stands for International Business Machines.
def test_company_ibm_matches_international_business_machines() -> None:
    assert c.company("IBM", "International Business Machines") == 100


# Standard Contact Matching Rule and Standard Lead Matching Rule: Company (2,5).
def test_company_key_of_salesforce_com_is_sales() -> None:
    assert n.company_key("salesforce.com") == "sales"


# --- title -------------------------------------------------------------------------


# Trailhead, Duplicate Management (matching rules): a VP is also a Vice President.
def test_title_vp_considers_vice_president() -> None:
    assert c.title("VP", "Vice President") == 100


# Matching Methods Used in Matching Rules: title uses edit distance among its algorithms.
def test_title_scores_at_least_its_edit_distance() -> None:
    assert c.title("VP Sales", "VP of Sales") >= c.edit_distance("VP Sales", "VP of Sales")


# --- email -------------------------------------------------------------------------


# Normalization Criteria for Match Keys: exact fields are lowercased and trimmed.
def test_email_is_lowercased_and_trimmed() -> None:
    assert c.email("  John.Doe@Example.COM ", "john.doe@example.com") == 100


# --- phone -------------------------------------------------------------------------

PHONE_A, PHONE_B = "1-415-555-1234", "1-415-555-5678"


# Matching Methods Used in Matching Rules: Fuzzy: Phone, only the last four differ.
def test_phone_only_last_four_digits_differ_scores_90() -> None:
    assert c.phone(PHONE_A, PHONE_B) == 90


# Matching Methods Used in Matching Rules: that 90 is a match at the threshold of 80.
def test_phone_only_last_four_digits_differ_is_a_match() -> None:
    assert c.phone(PHONE_A, PHONE_B) >= threshold("phone")


# Standard Contact Matching Rule and Standard Lead Matching Rule: Phone key drops the
# leading 1 and the last four digits.
def test_phone_key_ignores_the_leading_1() -> None:
    assert n.phone_key("1-415-555-1234") == n.phone_key("415-555-1234")


def test_phone_key_drops_the_last_four_digits() -> None:
    assert n.phone_key("1-415-555-1234").endswith("415555")


# Standard Person Account Matching Rule: Phone (drop last four digits).
def test_phone_key_of_an_unparseable_number_drops_its_last_four_digits() -> None:
    assert n.phone_key("555-1234-5678") == "5551234"


# --- postal code -------------------------------------------------------------------


# Matching Methods Used in Matching Rules: Fuzzy: ZIP, first five 90%, last four 10%.
def test_zip_only_last_four_digits_differ_scores_90() -> None:
    assert c.postal_code("94105-6789", "94105-1234") == 90


def test_zip_only_last_four_digits_differ_is_a_match() -> None:
    assert c.postal_code("94105-6789", "94105-1234") >= threshold("postal_code")


# --- street ------------------------------------------------------------------------


# Trailhead, Duplicate Management (matching rules): only the street number and name
# agree, which scores 70.
def test_street_only_number_and_name_agree_scores_70() -> None:
    assert c.street("123 Market Street, Suite 100", "123 Market Drive, Suite 300") == 70


# Same page: that 70 is not a match at the threshold of 80.
def test_street_only_number_and_name_agree_is_not_a_match() -> None:
    score = c.street("123 Market Street, Suite 100", "123 Market Drive, Suite 300")
    assert score < threshold("street")


# Standard Person Account Matching Rule: Street Address key of 123 Maple Avenue.
def test_street_sections_of_123_maple_avenue() -> None:
    assert n.street_sections("123 Maple Avenue") == ("123", "maple", "ave", "")


# Matching Methods Used in Matching Rules: the street name is compared by edit distance,
# so one or two mistyped characters keep a street a match.
@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("25 Pike Place", "25 Pike Mlace"),  # a typo in the suffix
        ("42 Weston Street", "42 Westo Atreet"),  # in the name and in the suffix
        ("106 Hawken Street", "106 Hawkenstreet"),  # the suffix typed onto the name
    ],
)
def test_street_with_a_typo_is_a_match(a: str, b: str) -> None:
    assert c.street(a, b) >= threshold("street")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("25 Pike Place", "25 Main Street"),  # another street
        ("12 Oak Street", "14 Oak Street"),  # another house number
        ("12 Oak St Apt 4", "12 Oak St Apt 9"),  # another unit
    ],
)
def test_different_street_is_not_a_match(a: str, b: str) -> None:
    assert c.street(a, b) < threshold("street")


@pytest.mark.parametrize(
    ("street", "sections"),
    [
        ("25 Pike Mlace", ("25", "pike", "pl", "")),
        ("42 Westo Atreet", ("42", "westo", "st", "")),
        ("106 Hawkenstreet", ("106", "hawken", "st", "")),
    ],
)
def test_street_sections_recognise_a_mistyped_or_merged_suffix(
    street: str, sections: tuple[str, str, str, str]
) -> None:
    assert n.street_sections(street) == sections


@pytest.mark.parametrize(
    ("street", "sections"),
    [
        ("12 Avenue C", ("12", "avenue c", "", "")),  # a one-letter word is no suffix typo
        ("12 London Bridge", ("12", "london bridge", "", "")),  # a word of its own
        ("12 Oakridge", ("12", "oakridge", "", "")),  # a name that ends like a suffix
    ],
)
def test_street_sections_keep_words_that_only_look_like_a_suffix(
    street: str, sections: tuple[str, str, str, str]
) -> None:
    assert n.street_sections(street) == sections
