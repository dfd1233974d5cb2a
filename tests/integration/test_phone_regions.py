"""Phones read in their record's own region (its country, else TESSERA_DEFAULT_REGION), in
matching (API, services, CSV import, key rebuild) and in the stored ``phone_e164``."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from pytest_django.fixtures import Settings

from tessera.crm import services
from tessera.crm.inputs import ContactInput
from tessera.crm.matching import engine, rules
from tessera.crm.matching.models import MatchingRule
from tessera.crm.matching.services import rebuild_match_keys
from tessera.crm.models import Contact
from tests.support.api import Api

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_rules")]

# Names and a phone only: of the standard contact rule, just the group (1 AND 2 AND 6)
# (first name, last name, phone) can match, so a match is the phone's doing.
ADA = {"first_name": "Ada", "last_name": "Lovelace", "phone": "+49 30 1234567"}
LOCAL = "030 1234567"  # Ada's Berlin number as dialled in Germany
E164 = "+49301234567"


def stored(**overrides: Any) -> Contact:
    return services.create_contact(ContactInput(**{**ADA, **overrides})).record


def local(**fields: Any) -> dict[str, Any]:
    """Ada as someone in Germany types her in: the local number, and these fields."""
    return {**ADA, "phone": LOCAL, **fields}


def match_ids(api: Api, record: dict[str, Any]) -> list[str]:
    r = api.post("/match", {"object": "contact", "record": record})
    assert r.status_code == 200, r.content
    return [m["id"] for m in json.loads(r.content)["matches"]]


def created(api: Api, record: dict[str, Any]) -> dict[str, Any]:
    r = api.post("/contacts", record)
    assert r.status_code == 201, r.content
    body: dict[str, Any] = json.loads(r.content)
    return body


def fetched(api: Api, contact_id: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(api.get(f"/contacts/{contact_id}").content)
    return body


# --- matching --------------------------------------------------------------------------


def test_match_endpoint_reads_a_local_number_in_the_records_country(api: Api) -> None:
    ada = stored()
    assert match_ids(api, local(country="DE")) == [ada.pk]


def test_create_reports_the_stored_contact_with_a_local_number(api: Api) -> None:
    ada = stored()
    body = created(api, local(country="DE"))
    assert [d["id"] for d in body["duplicates"]] == [ada.pk]


def test_standard_rule_scores_the_local_number_as_equal() -> None:
    ada = stored()
    rule_id = MatchingRule.objects.get(object="contact", is_standard=True).pk
    rule = next(r for r in rules.active_rules("contact") if r.id == rule_id)
    # The names score 100, so a mean of 100 over (1 AND 2 AND 6) is a phone scoring 100.
    assert engine.score_rule(rule, local(country="DE"), ada) == 100


def test_country_name_reads_like_its_code(api: Api) -> None:
    ada = stored()
    assert match_ids(api, local(country="Germany")) == [ada.pk]


def test_stored_local_number_is_read_in_the_stored_country(api: Api) -> None:
    ada = stored(phone=LOCAL, country="DE")
    assert match_ids(api, dict(ADA)) == [ada.pk]


def test_resolve_person_finds_the_contact_by_a_local_number() -> None:
    ada = stored()
    assert services.resolve_person(ContactInput(**local(country="DE"))).record.pk == ada.pk


def test_rebuilt_keys_read_the_stored_country(api: Api) -> None:
    ada = stored(phone=LOCAL, country="DE")
    rebuild_match_keys("contact")
    assert match_ids(api, dict(ADA)) == [ada.pk]


def test_default_region_reads_numbers_without_a_country(api: Api, settings: Settings) -> None:
    ada = stored()
    settings.TESSERA_DEFAULT_REGION = "DE"
    assert match_ids(api, local()) == [ada.pk]


def test_default_region_is_read_at_each_lookup(api: Api, settings: Settings) -> None:
    ada = stored()
    settings.TESSERA_DEFAULT_REGION = "DE"
    assert match_ids(api, local()) == [ada.pk]
    settings.TESSERA_DEFAULT_REGION = "US"
    assert match_ids(api, local()) == []


def test_without_a_country_a_number_reads_as_american(api: Api) -> None:
    body = created(api, local())
    assert body["phone_e164"] == "+10301234567"


# --- storage ---------------------------------------------------------------------------


def test_phone_e164_is_stored_beside_the_phone_as_typed(api: Api) -> None:
    body = fetched(api, created(api, local(country="DE"))["id"])
    assert (body["phone"], body["phone_e164"]) == (LOCAL, E164)


def test_phone_e164_is_blank_when_not_a_possible_number(api: Api) -> None:
    body = fetched(api, created(api, local(phone="12", country="US"))["id"])
    assert body["phone_e164"] == ""


def test_phone_e164_follows_an_edit_of_the_country(api: Api) -> None:
    contact_id = created(api, local())["id"]
    r = api.send("PATCH", f"/contacts/{contact_id}", {"country": "DE"})
    assert json.loads(r.content)["phone_e164"] == E164


def test_account_stores_phone_e164(api: Api) -> None:
    r = api.post("/accounts", {"name": "Contoso Ltd", "phone": "020 7946 0000", "country": "UK"})
    assert json.loads(r.content)["phone_e164"] == "+442079460000"


# --- CSV import ------------------------------------------------------------------------


def import_rows(tmp_path: Path, *rows: str) -> dict[int, dict[str, str]]:
    path = tmp_path / "people.csv"
    path.write_text("First Name,Surname,Phone,Country\n" + "\n".join(rows) + "\n")
    call_command("import", "contacts", str(path))
    with path.with_name("people.results.csv").open() as f:
        return {int(r["row"]): r for r in csv.DictReader(f)}


def test_import_stores_phone_e164_read_in_the_rows_country(tmp_path: Path) -> None:
    result = import_rows(tmp_path, f"Grace,Hopper,{LOCAL},DE")
    assert Contact.objects.get(pk=result[2]["id"]).phone_e164 == E164


def test_import_links_a_local_number_to_the_stored_contact(tmp_path: Path) -> None:
    ada = stored()
    result = import_rows(tmp_path, f"Ada,Lovelace,{LOCAL},Germany")
    assert result[2]["id"] == ada.pk


def test_the_rebuild_command_reads_phones_in_a_new_default_region(settings: Any) -> None:
    """After TESSERA_DEFAULT_REGION changes, `tessera matchkeys rebuild` re-reads the
    phones stored without a country, and matching follows."""
    from io import StringIO

    greta = services.create_contact(
        ContactInput(first_name="Greta", last_name="Lindqvist", phone="030 1234567")
    ).record
    settings.TESSERA_DEFAULT_REGION = "DE"
    call_command("matchkeys", "rebuild", "--object", "contact", stdout=StringIO())
    assert Contact.objects.get(pk=greta.pk).phone_e164 == "+49301234567"
