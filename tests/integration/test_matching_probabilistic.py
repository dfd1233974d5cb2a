"""Rules in probabilistic mode: defined through the API, trained, and used wherever rules are."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from tessera.crm import services
from tessera.crm.inputs import ContactInput
from tessera.crm.matching import rules
from tessera.crm.matching.models import MatchingModel, MatchingRule
from tessera.crm.models import Contact
from tests.support.api import Api, assert_problem
from tests.support.matching_population import population

pytestmark = pytest.mark.django_db

ADA = {
    "first_name": "Ada",
    "last_name": "Lovelace",
    "email": "ada@example.com",
    "phone": "+1 415 555 1234",
    "street": "12 St James's Square",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "birthdate": "1815-12-10",
}
PROBABILISTIC = {"object": "contact", "name": "People, weighed", "mode": "probabilistic"}


@pytest.fixture(autouse=True)
def only_probabilistic() -> None:
    """The standard person rules off, so whatever matches, the probabilistic rule found."""
    MatchingRule.objects.filter(object__in=["contact", "lead"]).update(active=False)
    rules.invalidate()


def _rule(admin_api: Api, **fields: Any) -> dict[str, Any]:
    response = admin_api.post("/matching-rules", {**PROBABILISTIC, **fields})
    assert response.status_code == 201, response.content
    rules.invalidate()
    return dict(json.loads(response.content))


def _match(api: Api, record: dict[str, Any]) -> list[dict[str, Any]]:
    body = json.loads(api.post("/match", {"object": "contact", "record": record}).content)
    return list(body["matches"])


def test_a_probabilistic_rule_says_its_mode(admin_api: Api) -> None:
    assert _rule(admin_api)["mode"] == "probabilistic"


def test_a_probabilistic_rule_without_criteria_blocks_as_the_standard_rule(admin_api: Api) -> None:
    assert len(_rule(admin_api)["criteria"]) == 9


def test_a_rules_mode_rule_without_logic_is_refused(admin_api: Api) -> None:
    response = admin_api.post("/matching-rules", {**PROBABILISTIC, "mode": "rules"})
    assert_problem(response, 422, "validation_error")


def test_a_refused_rule_writes_nothing(admin_api: Api) -> None:
    before = MatchingRule.objects.count()
    admin_api.post("/matching-rules", {**PROBABILISTIC, "mode": "rules"})
    assert MatchingRule.objects.count() == before


def test_a_probability_above_one_is_refused(admin_api: Api) -> None:
    response = admin_api.post("/matching-rules", {**PROBABILISTIC, "match_probability": 1.5})
    assert_problem(response, 422, "validation_error")


def test_match_returns_the_probability(admin_api: Api, api: Api) -> None:
    _rule(admin_api)
    services.create_contact(ContactInput(**ADA))
    (found,) = _match(api, {**ADA, "last_name": "Lovelaec", "phone": ""})
    assert found["match_probability"] >= 0.99


def test_match_returns_the_weight_each_field_contributed(admin_api: Api, api: Api) -> None:
    _rule(admin_api)
    services.create_contact(ContactInput(**ADA))
    (found,) = _match(api, {**ADA, "phone": ""})
    email = next(w for w in found["weights"] if w["field"] == "email")
    assert email["weight"] > 0


def test_a_missing_field_weighs_nothing(admin_api: Api, api: Api) -> None:
    _rule(admin_api)
    services.create_contact(ContactInput(**ADA))
    (found,) = _match(api, {**ADA, "phone": ""})
    phone = next(w for w in found["weights"] if w["field"] == "phone")
    assert phone == {"field": "phone", "level": "missing", "weight": 0.0}


def test_a_namesake_elsewhere_is_not_matched(admin_api: Api, api: Api) -> None:
    _rule(admin_api)
    services.create_contact(ContactInput(**ADA))
    namesake = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada.l@example.org",
                "city": "Leeds", "street": "4 Park Row", "birthdate": "1990-03-02"}  # fmt: skip
    assert _match(api, namesake) == []


def test_a_probabilistic_block_rule_refuses_a_duplicate(admin_api: Api, api: Api) -> None:
    _rule(admin_api, action="block")
    services.create_contact(ContactInput(**ADA))
    response = api.post("/contacts", {**ADA, "first_name": "Adda"})
    assert_problem(response, 409, "duplicate_blocked")


def test_a_blocked_duplicate_is_not_written(admin_api: Api, api: Api) -> None:
    _rule(admin_api, action="block")
    services.create_contact(ContactInput(**ADA))
    api.post("/contacts", {**ADA, "first_name": "Adda"})
    assert Contact.objects.count() == 1


def test_resolve_person_links_through_a_probabilistic_rule(admin_api: Api) -> None:
    _rule(admin_api)
    ada = services.create_contact(ContactInput(**ADA)).record
    resolved = services.resolve_person(
        ContactInput(**{**ADA, "email": "", "last_name": "Lovelase"})
    )
    assert resolved.record.pk == ada.pk


# --- training ------------------------------------------------------------------------------


@pytest.fixture
def stored_people() -> int:
    people = population(size=400, seed=3).records
    Contact.objects.bulk_create(
        Contact(**{k: (v or None) if k == "birthdate" else v for k, v in p.items()}) for p in people
    )
    return len(people)


def test_training_stores_the_contact_model(stored_people: int) -> None:
    call_command("matching", "train", "--object", "contact", stdout=StringIO())
    assert MatchingModel.objects.get(object="contact").records == stored_people


def test_training_prints_the_weights(stored_people: int) -> None:
    out = StringIO()
    call_command("matching", "train", "--object", "contact", stdout=out)
    assert "contact model weights" in out.getvalue()


def test_training_without_duplicates_says_which_fields_kept_the_hand_set_m() -> None:
    people = population(size=400, duplicate_share=0.0, seed=3).records
    Contact.objects.bulk_create(
        Contact(**{k: (v or None) if k == "birthdate" else v for k, v in p.items()}) for p in people
    )
    out = StringIO()
    call_command("matching", "train", "--object", "contact", stdout=out)
    assert "the hand-set m is kept" in " ".join(out.getvalue().split())


def test_training_with_duplicates_learns_every_field(stored_people: int) -> None:
    out = StringIO()
    call_command("matching", "train", "--object", "contact", stdout=out)
    assert "hand-set" not in out.getvalue()


def test_rules_score_with_the_trained_model(admin_api: Api, stored_people: int) -> None:
    _rule(admin_api)
    call_command("matching", "train", "--object", "contact", stdout=StringIO())
    rules.invalidate()
    (spec,) = [r for r in rules.active_rules("contact") if r.mode == "probabilistic"]
    assert spec.model.training is not None


def test_the_admin_shows_the_trained_weights(stored_people: int) -> None:
    call_command("matching", "train", "--object", "contact", stdout=StringIO())
    boss = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client = Client()
    client.force_login(boss)
    trained = MatchingModel.objects.get(object="contact")
    page = client.get(f"/admin/crm/matchingmodel/{trained.pk}/change/").content.decode()
    assert "weight log2(m/u)" in page
