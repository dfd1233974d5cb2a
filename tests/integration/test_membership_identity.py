"""One person, one membership per program, whatever path they come by: an email is an
identifier that outranks a fuzzy name match, and a lead converted during resolution
becomes the contact it duplicates rather than a second one."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from tessera.crm import services
from tessera.crm.inputs import ContactInput
from tessera.crm.models import Contact, Lead
from tessera.loyalty.models import Member
from tessera.loyalty.programs import enroll_member
from tests.support.api import Api
from tests.support.loyalty import program

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_rules")]

ROBERT = {"first_name": "Robert", "last_name": "Johnson", "email": "robert.johnson@example.com"}
BOBBY = {**ROBERT, "first_name": "Bobby"}


def newer_lead(**fields: Any) -> Lead:
    """A lead created after the contact and active since, as in the report."""
    lead = services.create_lead(ContactInput(**{**ROBERT, "first_name": "Rob", **fields})).record
    Lead.objects.filter(pk=lead.pk).update(last_activity_at=timezone.now() + timedelta(days=1))
    return lead


@pytest.fixture
def enrolled_robert() -> Member:
    prog = program()
    robert = services.create_contact(ContactInput(**ROBERT)).record
    member, _ = enroll_member(prog.pk, contact_id=robert.pk)
    return member


def enrol(api: Api, member: Member, person: dict[str, Any]) -> Any:
    return api.post("/members", {"program_id": member.program_id, "contact": person})


class TestAnExistingMemberByEmail:
    def test_enrolling_again_by_details_answers_200(
        self, api: Api, enrolled_robert: Member
    ) -> None:
        newer_lead()
        assert enrol(api, enrolled_robert, BOBBY).status_code == 200

    def test_enrolling_again_returns_the_existing_membership(
        self, api: Api, enrolled_robert: Member
    ) -> None:
        newer_lead()
        assert json.loads(enrol(api, enrolled_robert, BOBBY).content)["id"] == enrolled_robert.pk

    def test_enrolling_again_makes_no_second_membership(
        self, api: Api, enrolled_robert: Member
    ) -> None:
        newer_lead()
        enrol(api, enrolled_robert, BOBBY)
        assert Member.objects.count() == 1

    def test_enrolling_again_makes_no_new_contact(self, api: Api, enrolled_robert: Member) -> None:
        newer_lead()
        enrol(api, enrolled_robert, BOBBY)
        assert Contact.objects.count() == 1

    def test_the_email_matches_in_any_case(self, api: Api, enrolled_robert: Member) -> None:
        r = enrol(api, enrolled_robert, {**BOBBY, "email": "Robert.Johnson@Example.COM"})
        assert json.loads(r.content)["id"] == enrolled_robert.pk


class TestResolution:
    def test_the_same_email_wins_over_a_newer_lead(self) -> None:
        robert = services.create_contact(ContactInput(**ROBERT)).record
        newer_lead()
        assert services.resolve_person(ContactInput(**BOBBY)).record.pk == robert.pk

    def test_the_same_email_wins_over_a_closer_name(self) -> None:
        robert = services.create_contact(ContactInput(**ROBERT)).record
        # The same name exactly, and more recent, but reached by phone, not email.
        services.create_lead(
            ContactInput(first_name="Bobby", last_name="Johnson", phone="+1 415 555 0101")
        )
        person = {**BOBBY, "phone": "+1 415 555 0101"}
        assert services.resolve_person(ContactInput(**person)).record.pk == robert.pk

    def test_a_contact_wins_over_a_lead_with_the_same_email(self) -> None:
        robert = services.create_contact(ContactInput(**ROBERT)).record
        newer_lead()
        assert isinstance(services.resolve_person(ContactInput(**BOBBY)).record, Contact)
        assert services.resolve_person(ContactInput(**BOBBY)).record.pk == robert.pk

    def test_a_lead_duplicating_a_contact_converts_into_it(self) -> None:
        robert = services.create_contact(ContactInput(**ROBERT)).record
        lead = newer_lead()
        assert services.convert_lead(lead).pk == robert.pk

    def test_a_lead_duplicating_a_contact_creates_no_contact(self) -> None:
        services.create_contact(ContactInput(**ROBERT))
        services.convert_lead(newer_lead())
        assert Contact.objects.count() == 1

    def test_the_converted_lead_points_at_the_contact(self) -> None:
        robert = services.create_contact(ContactInput(**ROBERT)).record
        lead = newer_lead()
        services.convert_lead(lead)
        lead.refresh_from_db()
        assert lead.converted_contact_id == robert.pk

    def test_a_lead_of_a_new_person_still_becomes_a_contact(self) -> None:
        lead = services.create_lead(ContactInput(first_name="Ada", last_name="Byron")).record
        contact = services.convert_lead(lead)
        assert contact.last_name == "Byron"

    def test_enrolling_a_lead_only_person_converts_the_lead(self, api: Api) -> None:
        prog = program()
        lead = services.create_lead(ContactInput(**ROBERT)).record
        body = json.loads(api.post("/members", {"program_id": prog.pk, "contact": BOBBY}).content)
        lead.refresh_from_db()
        assert body["contact_id"] == lead.converted_contact_id


def test_the_database_refuses_a_second_membership(enrolled_robert: Member) -> None:
    from tessera.ledger.services import get_or_create_account

    wallet = get_or_create_account("wallet:test-second", name="second", asset="PTS")
    with pytest.raises(IntegrityError), transaction.atomic():
        Member.objects.create(
            id="mem_second", program_id=enrolled_robert.program_id,
            contact_id=enrolled_robert.contact_id, wallet=wallet,
        )  # fmt: skip
