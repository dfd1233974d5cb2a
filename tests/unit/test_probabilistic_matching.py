"""Probabilistic (Fellegi-Sunter) matching: comparison levels, scoring, JSON and training
on a generated population with damaged duplicates (no database)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator

import pytest

from tessera.crm.matching import normalize as n
from tessera.crm.matching.fs_levels import PERSON_FIELDS, field_levels
from tessera.crm.matching.fs_model import (
    DEFAULT_PRIOR,
    FieldParams,
    Model,
    default_model,
    field_weights,
    match_probability,
    score_pair,
)
from tessera.crm.matching.fs_train import plausible, train
from tests.support.matching_population import Population, Record, population

ACCOUNT_FIELDS = ("company", "phone", "street", "city", "postal_code")


@pytest.fixture(autouse=True, scope="module")
def _no_extra_variants() -> Iterator[None]:
    n.set_extra_variants([])
    yield
    n.set_extra_variants([])


@pytest.fixture(scope="module")
def people() -> Population:
    return population(3000, duplicate_share=0.2, seed=7)


@pytest.fixture(scope="module")
def model(people: Population) -> Model:
    return train(people.records, max_pairs=100_000)


def level_weight(model: Model, field: str, label: str) -> float:
    params = model.params[field]
    return field_weights(params)[params.labels.index(label)]


def field_weight(model: Model, field: str, a: str, b: str) -> float:
    return score_pair(model, {field: a}, {field: b}).fields[field].weight


def probability(model: Model, a: Record, b: Record) -> float:
    return score_pair(model, a, b).match_probability


# --- levels ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "a", "b", "label"),
    [
        ("first_name", "Anne", "ANNE", "exact"),
        ("first_name", "Mary-Ann", "mary ann", "exact"),
        ("first_name", "Robert", "Bob", "variant"),
        ("first_name", "J.", "John", "variant"),
        ("first_name", "Michael", "Micheal", "jw_92"),
        ("first_name", "Kristin", "Christine", "jw_80"),
        ("first_name", "Geoff", "Jeff", "phonetic"),
        ("first_name", "Mary", "Peter", "other"),
        ("last_name", "O'Brien", "obrien", "exact"),
        ("last_name", "Smith", "Smtih", "edit_1"),
        ("last_name", "Knight", "Night", "edit_1"),
        ("last_name", "Johnson", "Jonsen", "close"),
        ("last_name", "Schmidt", "Smith", "phonetic"),
        ("last_name", "Jones", "Smith", "other"),
        ("email", "Bob@Example.com", "bob@example.com", "exact"),
        ("email", "bob.smith@gmail.com", "bob.smith@yahoo.com", "similar"),
        ("email", "bob.smith@gmail.com", "bob.smiht@gmail.com", "similar"),
        ("email", "bob@gmail.com", "alice@yahoo.com", "other"),
        ("phone", "+14155551234", "+1 415 555 1234", "exact"),
        ("phone", "+14155551234", "+12125551234", "last_7"),
        ("phone", "+14155551234", "+14155551243", "edit_1"),
        ("phone", "+14155551234", "+14155557777", "other"),
        ("phone", "+14155551234", "+13125559876", "other"),
        ("birthdate", "1980-03-04", "1980-03-04", "exact"),
        ("birthdate", "1980-03-04", "1980-04-03", "near"),
        ("birthdate", "1980-03-04", "1981-03-04", "near"),
        ("birthdate", "1980-03-04", "1980-03-14", "near"),
        ("birthdate", "1980-03-04", "1975-11-20", "other"),
        ("street", "12 Main Street", "12 Main St.", "exact"),
        ("street", "12 Main St", "12 Mian St", "close"),
        ("street", "12 Main St", "14 Main St", "partial"),
        ("street", "12 Maple St", "12 Mabel St", "partial"),
        ("street", "12 Main St", "40 Oak Ave", "other"),
        ("city", "St. Louis", "Saint Louis", "exact"),
        ("city", "Boston", "Bostn", "jw_90"),
        ("city", "Boston", "Chicago", "other"),
        ("postal_code", "SW1A 1AA", "sw1a1aa", "exact"),
        ("postal_code", "94105", "94150", "edit_1"),
        ("postal_code", "94105", "94122", "prefix_3"),
        ("postal_code", "94105", "10001", "other"),
        ("company", "Acme, Inc.", "ACME", "exact"),
        ("company", "Acme Widgets", "Widgets Acme Co", "token_sort_85"),
        ("company", "Acme", "Globex", "other"),
    ],
)
def test_level_of_a_pair(field: str, a: str, b: str, label: str) -> None:
    levels = field_levels(field)
    assert levels.label(levels.level(a, b)) == label


@pytest.mark.parametrize("field", PERSON_FIELDS)
def test_blank_value_is_missing(field: str) -> None:
    levels = field_levels(field)
    assert levels.label(levels.level("", "x1")) == "missing"


def test_field_without_levels_of_its_own_compares_as_text() -> None:
    levels = field_levels("title")
    assert levels.label(levels.level("Sales Manager", "sales  manager")) == "exact"


def test_default_person_fields_are_the_nine() -> None:
    assert PERSON_FIELDS == (
        "first_name",
        "last_name",
        "email",
        "phone",
        "birthdate",
        "street",
        "city",
        "postal_code",
        "company",
    )


# --- scoring -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [({"email": ""}, {"email": "bob@example.com"}), ({"email": ""}, {"email": ""}), ({}, {})],
)
def test_missing_value_is_labelled_missing(a: Record, b: Record) -> None:
    assert score_pair(default_model(), a, b).fields["email"].level == "missing"


@pytest.mark.parametrize(
    ("a", "b"),
    [({"email": ""}, {"email": "bob@example.com"}), ({"email": ""}, {"email": ""}), ({}, {})],
)
def test_missing_value_contributes_nothing(a: Record, b: Record) -> None:
    assert score_pair(default_model(), a, b).fields["email"].weight == 0.0


def test_match_weight_is_prior_odds_plus_field_weights(people: Population, model: Model) -> None:
    original, copy = people.duplicates[0]
    score = score_pair(model, people.records[original], people.records[copy])
    expected = model.prior_weight + sum(f.weight for f in score.fields.values())
    assert score.match_weight == pytest.approx(expected)


def test_score_lists_every_model_field_in_order(people: Population, model: Model) -> None:
    score = score_pair(model, people.records[0], people.records[1])
    assert tuple(score.fields) == model.fields


def test_probability_of_a_huge_weight_is_one() -> None:
    assert match_probability(5000.0) == 1.0


def test_probability_of_a_hugely_negative_weight_is_next_to_nothing() -> None:
    assert match_probability(-5000.0) < 1e-300


def test_probability_of_zero_weight_is_a_half() -> None:
    assert match_probability(0.0) == 0.5


def test_default_model_scores_a_duplicate_above_an_unrelated_pair(people: Population) -> None:
    original, copy = people.duplicates[0]
    base = people.records[original]
    duplicate = probability(default_model(), base, people.records[copy])
    assert duplicate > probability(default_model(), base, people.records[original - 1])


def test_default_model_finds_an_obvious_duplicate() -> None:
    a = {"first_name": "Ann", "last_name": "Lee", "email": "ann.lee@example.com"}
    b = {"first_name": "Anne", "last_name": "Lee", "email": "ann.lee@example.com"}
    assert probability(default_model(), a, b) > 0.9


def test_model_rejects_levels_of_another_version() -> None:
    params = FieldParams(("exact", "other"), (0.9, 0.1), (0.01, 0.99))
    with pytest.raises(ValueError, match="levels"):
        Model(("city",), {"city": params}, 1e-4)


def test_model_rejects_a_prior_of_one() -> None:
    with pytest.raises(ValueError, match="prior"):
        Model(("city",), {"city": default_model(("city",)).params["city"]}, 1.0)


def test_model_can_be_hashed() -> None:
    assert hash(default_model()) == hash(default_model())


# --- JSON ----------------------------------------------------------------------------------


def test_model_round_trips_through_json(model: Model) -> None:
    text = json.dumps(model.to_json())
    assert Model.from_json(json.loads(text)) == model


def test_json_is_stable(model: Model) -> None:
    again = Model.from_json(json.loads(json.dumps(model.to_json())))
    assert json.dumps(again.to_json()) == json.dumps(model.to_json())


def test_json_is_versioned(model: Model) -> None:
    assert model.to_json()["version"] == 1


def test_json_of_another_version_is_refused(model: Model) -> None:
    data = {**model.to_json(), "version": 2}
    with pytest.raises(ValueError, match="version"):
        Model.from_json(data)


def test_malformed_json_is_refused() -> None:
    with pytest.raises(ValueError, match="malformed"):
        Model.from_json({"version": 1, "fields": [{"name": "city"}], "prior": 0.1})


def test_model_from_json_scores_as_the_original(people: Population, model: Model) -> None:
    loaded = Model.from_json(json.loads(json.dumps(model.to_json())))
    a, b = people.records[0], people.records[people.duplicates[0][1]]
    assert score_pair(loaded, a, b) == score_pair(model, a, b)


def test_default_model_round_trips_through_json() -> None:
    assert Model.from_json(default_model().to_json()) == default_model()


# --- training ------------------------------------------------------------------------------


def test_training_converges(model: Model) -> None:
    assert model.training is not None
    assert model.training.converged is True


def test_training_records_its_iterations(model: Model) -> None:
    assert model.training is not None
    assert model.training.iterations >= len(model.training.sessions)


def test_training_runs_every_blocking_session(model: Model) -> None:
    assert model.training is not None
    assert [s.name for s in model.training.sessions] == ["email", "phone", "address", "name"]


def test_training_counts_its_records(people: Population, model: Model) -> None:
    assert model.training is not None
    assert model.training.records == len(people.records)


def test_exact_email_weighs_more_than_exact_city(model: Model) -> None:
    assert level_weight(model, "email", "exact") > level_weight(model, "city", "exact")


def test_exact_birthdate_weighs_more_than_exact_city(model: Model) -> None:
    assert level_weight(model, "birthdate", "exact") > level_weight(model, "city", "exact")


def test_exact_phone_weighs_more_than_exact_postal_code(model: Model) -> None:
    assert level_weight(model, "phone", "exact") > level_weight(model, "postal_code", "exact")


@pytest.mark.parametrize("field", PERSON_FIELDS)
def test_exact_agreement_is_evidence_for_a_match(model: Model, field: str) -> None:
    assert level_weight(model, field, "exact") > 0


@pytest.mark.parametrize("field", PERSON_FIELDS)
def test_disagreement_is_evidence_against_a_match(model: Model, field: str) -> None:
    assert level_weight(model, field, "other") < 0


def test_a_typo_weighs_less_than_the_exact_birthdate(model: Model) -> None:
    assert level_weight(model, "birthdate", "near") < level_weight(model, "birthdate", "exact")


def test_prior_is_near_the_share_of_duplicate_pairs(people: Population, model: Model) -> None:
    size = len(people.records)
    true_prior = len(people.duplicates) / (size * (size - 1) / 2)
    assert model.prior == pytest.approx(true_prior, rel=0.5)


def test_true_duplicate_scores_above_nine_tenths(people: Population, model: Model) -> None:
    original = people.records[0]
    damaged = {**original, "last_name": original["last_name"] + "e", "phone": ""}
    assert probability(model, original, damaged) > 0.9


def test_unrelated_pair_scores_below_one_hundredth(people: Population, model: Model) -> None:
    assert probability(model, people.records[0], people.records[1]) < 0.01


def test_most_generated_duplicates_score_above_nine_tenths(
    people: Population, model: Model
) -> None:
    found = [
        probability(model, people.records[a], people.records[b]) > 0.9 for a, b in people.duplicates
    ]
    assert sum(found) / len(found) > 0.9


def test_random_pairs_rarely_score_above_a_half(people: Population, model: Model) -> None:
    rng = random.Random(5)
    originals = range(3000)  # the first records are all different people
    pairs = [rng.sample(originals, 2) for _ in range(2000)]
    false = [probability(model, people.records[a], people.records[b]) > 0.5 for a, b in pairs]
    assert sum(false) / len(false) < 0.005


def test_common_surname_weighs_less_than_a_rare_one(model: Model) -> None:
    common = field_weight(model, "last_name", "Smith", "Smith")
    assert common < field_weight(model, "last_name", "Zielinski", "Zielinski")


def test_unseen_surname_weighs_more_than_a_common_one(model: Model) -> None:
    common = field_weight(model, "last_name", "Smith", "Smith")
    assert common < field_weight(model, "last_name", "Wojciechowski", "Wojciechowski")


def test_term_frequencies_do_not_change_other_levels(model: Model) -> None:
    weight = field_weight(model, "last_name", "Smith", "Smtih")
    assert weight == level_weight(model, "last_name", "edit_1")


def test_term_frequency_tables_cover_names_and_city(model: Model) -> None:
    assert set(model.tf) == {"first_name", "last_name", "city"}


def test_training_is_deterministic_for_a_seed() -> None:
    records = population(600, seed=3).records
    first, second = train(records, max_pairs=20_000), train(records, max_pairs=20_000)
    assert first.params == second.params
    assert first.prior == second.prior


def test_training_a_field_subset_uses_only_those_fields() -> None:
    records = population(600, seed=3).records
    trained = train(records, fields=ACCOUNT_FIELDS, max_pairs=20_000)
    assert trained.fields == ACCOUNT_FIELDS


def test_training_skips_sessions_on_fields_the_model_lacks() -> None:
    records = population(600, seed=3).records
    trained = train(records, fields=ACCOUNT_FIELDS, max_pairs=20_000)
    assert trained.training is not None
    assert [s.name for s in trained.training.sessions] == ["phone", "address"]


def test_training_caps_huge_blocks() -> None:
    # Everyone shares one placeholder phone: one block of 400 records, cut to 50.
    records = [{**r, "phone": "+15555550000"} for r in population(400, 0.0, seed=4).records]
    trained = train(records, fields=("phone", "city"), max_pairs=5_000, max_block_size=50)
    assert trained.training is not None
    assert trained.training.sessions[0].pairs == 50 * 49 // 2


def test_field_no_session_estimates_keeps_its_hand_set_m() -> None:
    # The email session holds email fixed, and no other session runs without names.
    records = population(600, seed=3).records
    trained = train(records, fields=("email", "city"), max_pairs=20_000)
    assert trained.params["email"].m == default_model(("email",)).params["email"].m


def test_training_on_no_records_gives_the_default_prior() -> None:
    assert train([], max_pairs=100).prior == DEFAULT_PRIOR


def test_training_on_no_records_gives_the_default_m() -> None:
    assert train([], max_pairs=100).params["email"].m == default_model().params["email"].m


# --- a database with (nearly) no duplicates ----------------------------------------------


@pytest.fixture(scope="module")
def no_duplicates() -> Model:
    # Namesakes only: the generator's few names give many same-name pairs that EM, with no
    # duplicates to find, would otherwise take for matches.
    return train(population(3000, duplicate_share=0.0, seed=7).records, max_pairs=100_000)


@pytest.mark.parametrize("field", PERSON_FIELDS)
def test_hand_set_m_is_plausible(field: str) -> None:
    assert plausible(default_model().params[field].m)


def test_m_where_a_near_agreement_beats_exact_is_implausible() -> None:
    # What EM learnt from namesakes' email: "similar" (same name, another provider) 0.998.
    assert not plausible((0.001, 0.998, 0.001))


def test_m_where_matches_rarely_agree_is_implausible() -> None:
    # What EM learnt from namesakes' phones: 99.7% of "matches" disagree.
    assert not plausible((0.001, 0.001, 0.001, 0.997))


def test_training_without_duplicates_keeps_the_hand_set_m_of_the_phone(
    no_duplicates: Model,
) -> None:
    assert no_duplicates.params["phone"].m == default_model().params["phone"].m


def test_training_without_duplicates_says_which_fields_kept_the_hand_set_m(
    no_duplicates: Model,
) -> None:
    assert no_duplicates.training is not None
    assert "phone" in no_duplicates.training.defaulted


def test_training_with_duplicates_learns_every_field(model: Model) -> None:
    assert model.training is not None
    assert model.training.defaulted == ()


def test_kept_hand_set_fields_round_trip_through_json(no_duplicates: Model) -> None:
    assert Model.from_json(no_duplicates.to_json()).training == no_duplicates.training


def test_namesake_without_duplicates_to_learn_from_is_no_match(no_duplicates: Model) -> None:
    # Same names and city, the same email name at another provider; phone, birth date and
    # street differ. Trained on namesakes as if they were matches, this scored 0.999.
    a = {"first_name": "John", "last_name": "Smith", "email": "john.smith@gmail.com",
         "phone": "+14155551234", "birthdate": "1970-01-02", "street": "12 Oak St",
         "city": "Boston", "postal_code": "02110"}  # fmt: skip
    b = {"first_name": "John", "last_name": "Smith", "email": "john.smith@yahoo.com",
         "phone": "+14155559876", "birthdate": "1988-07-19", "street": "40 Elm Ave",
         "city": "Boston", "postal_code": "02134"}  # fmt: skip
    assert probability(no_duplicates, a, b) < 0.5
