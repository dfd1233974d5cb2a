"""The address compared as one field in probabilistic mode: one shared address counts once."""

from __future__ import annotations

import pytest

from tessera.crm.matching.fs_levels import CONTACT_FIELDS, field_levels, pack_address
from tessera.crm.matching.fs_model import Model, score_pair
from tessera.crm.matching.fs_train import train
from tests.support.matching_population import population

ADDRESS = field_levels("address")
HOME = pack_address("12 Main Street", "Springfield", "62701")


@pytest.mark.parametrize(
    ("other", "label"),
    [
        (pack_address("12 Main St.", "Springfield", "62701"), "exact"),
        (pack_address("12 Mian St", "Springfield", "62701"), "close"),
        (pack_address("12 Main Street", "", "62701"), "close"),
        (pack_address("12 Main Street", "Shelbyville", "40065"), "street_only"),
        (pack_address("40 Oak Avenue", "Springfield", "62701"), "place_only"),
        (pack_address("40 Oak Avenue", "Shelbyville", "40065"), "other"),
    ],
)
def test_address_levels(other: str, label: str) -> None:
    assert ADDRESS.label(ADDRESS.level(HOME, other)) == label


def test_an_address_with_nothing_in_it_is_missing() -> None:
    assert pack_address("", "", "") == ""


@pytest.fixture(scope="module")
def model() -> Model:
    """A contact model (address as one field) trained on a generated population."""
    records = [
        {**r, "address": pack_address(r["street"], r["city"], r["postal_code"])}
        for r in population(size=3000, seed=11).records
    ]
    return train(records, fields=CONTACT_FIELDS, max_pairs=100_000)


def test_a_relative_at_the_same_address_is_not_a_match(model: Model) -> None:
    ada = {"first_name": "Ada", "last_name": "Byron", "email": "ada@example.com",
           "phone": "+14155551234", "birthdate": "1815-12-10", "address": HOME}  # fmt: skip
    sister = {**ada, "first_name": "Augusta", "email": "augusta@example.com",
              "birthdate": "1783-01-26"}  # fmt: skip
    assert score_pair(model, ada, sister).match_probability < 0.5


def test_the_same_person_moved_is_still_a_match(model: Model) -> None:
    ada = {"first_name": "Ada", "last_name": "Byron", "email": "ada@example.com",
           "phone": "+14155551234", "birthdate": "1815-12-10", "address": HOME}  # fmt: skip
    moved = {**ada, "address": pack_address("4 Park Row", "Leeds", "LS1 5HD")}
    assert score_pair(model, ada, moved).match_probability > 0.99


def test_a_relative_at_home_with_nothing_else_known_is_not_a_match(model: Model) -> None:
    # The stored record has no email or birth date to tell them apart: only the first name
    # does, against a last name, an address and a landline that one household shares.
    ada = {"first_name": "Ada", "last_name": "Byron", "phone": "+14155551234", "address": HOME}
    sister = {**ada, "first_name": "Augusta", "email": "augusta@example.com"}
    assert score_pair(model, ada, sister).match_probability < 0.5


def test_a_household_agreement_counts_as_its_strongest_member(model: Model) -> None:
    ada = {"last_name": "Byron", "phone": "+14155551234", "address": HOME}
    fields = score_pair(model, ada, dict(ada)).fields
    alone = [score_pair(model, {f: ada[f]}, {f: ada[f]}).fields[f].weight for f in ada]
    assert sum(fields[f].weight for f in ada) == pytest.approx(max(alone))


def test_the_same_person_at_home_is_a_match(model: Model) -> None:
    ada = {"first_name": "Ada", "last_name": "Byron", "phone": "+14155551234", "address": HOME}
    assert score_pair(model, ada, {**ada, "email": "ada@example.com"}).match_probability > 0.99
