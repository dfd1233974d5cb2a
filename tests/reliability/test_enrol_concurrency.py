"""Real concurrent enrolments over the API on PostgreSQL: one person, one membership, one
contact, however the name is typed and whichever record fuzzy matching prefers."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from tessera.crm import services
from tessera.crm.inputs import ContactInput
from tessera.crm.matching import rules
from tessera.crm.matching.standard import install_standard_rules
from tessera.crm.models import Contact, Lead
from tessera.loyalty.models import Member
from tests.support.api import Api
from tests.support.concurrency import hammer
from tests.support.loyalty import program

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

REQUESTS = 80
SPELLINGS = ["Robert", "Bobby", "Rob", "robert", "Bob"]
EMAIL = "robert.johnson@example.com"


@pytest.fixture(autouse=True)
def standard_rules() -> None:
    # Transactional tests flush every table after them, the migrated standard rules too.
    install_standard_rules()
    rules.invalidate()


def enrolments(program_id: str, email: str) -> Any:
    turn = iter(range(REQUESTS))

    def enrol(api: Api) -> Any:
        first = SPELLINGS[next(turn) % len(SPELLINGS)]
        person = {"first_name": first, "last_name": "Johnson", "email": email}
        return api.post("/members", {"program_id": program_id, "contact": person})

    return enrol


def test_a_known_contact_and_a_newer_lead_end_as_one_membership() -> None:
    prog = program()
    robert = services.create_contact(
        ContactInput(first_name="Robert", last_name="Johnson", email=EMAIL)
    ).record
    lead = services.create_lead(ContactInput(first_name="Rob", last_name="Johnson", email=EMAIL))
    Lead.objects.filter(pk=lead.record.pk).update(
        last_activity_at=timezone.now() + timedelta(days=1)
    )
    results = hammer(REQUESTS, enrolments(prog.pk, EMAIL))
    assert {status for status, _ in results} <= {200, 201}
    assert Member.objects.filter(program=prog).count() == 1
    assert Member.objects.get(program=prog).contact_id == robert.pk
    assert Contact.objects.count() == 1


def test_a_new_person_enrolled_at_once_is_one_contact_and_one_membership() -> None:
    prog = program()
    results = hammer(REQUESTS, enrolments(prog.pk, "new.person@example.com"))
    assert {status for status, _ in results} <= {200, 201}
    assert Member.objects.filter(program=prog).count() == 1
    assert Contact.objects.count() == 1
    assert len({body["id"] for _, body in results}) == 1


def test_every_enrolment_answers_with_the_one_membership() -> None:
    prog = program()
    results = hammer(REQUESTS, enrolments(prog.pk, "third@example.com"))
    assert [s for s, _ in results].count(201) == 1
    assert json.dumps(sorted({b["id"] for _, b in results})) == json.dumps(
        [Member.objects.get(program=prog).pk]
    )
