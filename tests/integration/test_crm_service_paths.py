"""Every write of a contact goes through the CRM services, whoever makes it: the CSV import
(in bulk) and the admin record the timeline and the activity mark as the API does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from tessera.crm.importer import import_contacts
from tessera.crm.inputs import ContactInput, NewContacts
from tessera.crm.matching.models import MatchKey
from tessera.crm.models import Contact, TimelineEntry
from tessera.crm.services import create_contact, create_contacts_in_bulk

pytestmark = pytest.mark.django_db

PERSON_FORM = {
    "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "phone": "",
    "company": "", "title": "", "street": "", "city": "", "postal_code": "", "country": "",
    "birthdate": "", "account": "",
}  # fmt: skip


@pytest.fixture
def staff() -> Client:
    user = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def _timeline_form(contact: Contact | None) -> dict[str, Any]:
    """The read-only timeline inline's management form, with its existing rows."""
    entries = list(TimelineEntry.objects.filter(contact=contact)) if contact else []
    form: dict[str, Any] = {
        "timeline-TOTAL_FORMS": str(len(entries)), "timeline-INITIAL_FORMS": str(len(entries)),
        "timeline-MIN_NUM_FORMS": "0", "timeline-MAX_NUM_FORMS": "1000",
    }  # fmt: skip
    for i, entry in enumerate(entries):
        form[f"timeline-{i}-id"] = entry.pk
        form[f"timeline-{i}-contact"] = contact.pk if contact else ""
    return form


def test_an_imported_contact_has_its_timeline_entry_and_is_marked_active(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("First Name,Last Name,Email\nGrace,Hopper,grace@navy.mil\n", encoding="utf-8")
    import_contacts(path)
    grace = Contact.objects.get(email="grace@navy.mil")
    assert grace.last_activity_at is not None
    entry = TimelineEntry.objects.get(contact=grace)
    assert (entry.kind, entry.occurred_at) == ("contact_created", grace.last_activity_at)


def test_contacts_created_in_bulk_get_their_keys_and_timeline() -> None:
    contacts = [Contact(first_name="Ada", last_name=f"L{i}") for i in range(3)]
    keys = {c.pk: {f"test:{c.pk}"} for c in contacts}
    create_contacts_in_bulk(NewContacts(contacts, keys, summary="Contact created (test)"))
    assert set(MatchKey.objects.values_list("key", flat=True)) == {f"test:{c.pk}" for c in contacts}
    summaries = TimelineEntry.objects.filter(contact__in=contacts).values_list("summary", flat=True)
    assert list(summaries) == ["Contact created (test)"] * 3


def test_a_contact_added_in_the_admin_is_created_by_the_service(staff: Client) -> None:
    response = staff.post(
        reverse("admin:crm_contact_add"),
        {**PERSON_FORM, "email": "Ada@Example.com ", **_timeline_form(None)},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    ada = Contact.objects.get()
    assert ada.email == "ada@example.com"  # cleaned as every create cleans it
    assert TimelineEntry.objects.filter(contact=ada, kind="contact_created").exists()


def test_a_contact_edited_in_the_admin_records_the_timeline(staff: Client) -> None:
    ada = create_contact(ContactInput(first_name="Ada", last_name="Lovelace")).record
    response = staff.post(
        reverse("admin:crm_contact_change", args=[ada.pk]),
        {**PERSON_FORM, "last_name": "King", **_timeline_form(ada)},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Contact.objects.get(pk=ada.pk).last_name == "King"
    assert TimelineEntry.objects.filter(contact=ada, kind="contact_updated").count() == 1


def test_an_opt_out_set_in_the_admin_is_on_the_timeline(staff: Client) -> None:
    ada = create_contact(ContactInput(first_name="Ada", last_name="Lovelace")).record
    staff.post(
        reverse("admin:crm_contact_change", args=[ada.pk]),
        {**PERSON_FORM, "email_opt_out": "on", **_timeline_form(ada)},
    )
    assert Contact.objects.get(pk=ada.pk).email_opt_out
    assert TimelineEntry.objects.filter(
        contact=ada, summary="Opted out of reminder emails"
    ).exists()
