"""Marking a contact active never waits for its row (PostgreSQL, real row locks).

Callers reach ``record_timeline`` holding other locks in their own order (a wallet, an
item's counter); waiting there for a contact row another transaction holds closed a cycle
in the soak: an order (wallet, then contact) deadlocked against a payment settling for the
same member (contact, then wallet), and answered 500."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from django.db import connection, connections, transaction

from tessera.crm.inputs import ContactInput
from tessera.crm.models import Contact, TimelineEntry
from tessera.crm.services import create_contact, record_timeline

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def held_contact() -> Iterator[Contact]:
    """A contact whose row another transaction holds locked until the test is done."""
    contact = create_contact(ContactInput(first_name="Ada", last_name="Lovelace")).record
    # Never marked active, so recording an entry must mark it (and so wants the row).
    Contact.objects.filter(pk=contact.pk).update(last_activity_at=None)
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                # The lock an UPDATE of the contact's fields takes (marking it active, say):
                # it lets the timeline's foreign key through, but not a second UPDATE.
                Contact.objects.select_for_update(no_key=True).get(pk=contact.pk)
                locked.set()
                release.wait(30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold)
    holder.start()
    assert locked.wait(10), "the holder never took the lock"
    yield Contact.objects.get(pk=contact.pk)
    release.set()
    holder.join(30)


def mark_active(contact: Contact) -> TimelineEntry:
    with transaction.atomic():
        with connection.cursor() as cursor:
            # Without the guard the UPDATE would wait for the holder: fail fast instead.
            cursor.execute("SET LOCAL lock_timeout = '2s'")
        return record_timeline(contact, kind="note", obj=contact, summary="a note")


def test_a_contact_held_by_another_transaction_still_gets_its_timeline_entry(
    held_contact: Contact,
) -> None:
    entry = mark_active(held_contact)
    assert TimelineEntry.objects.filter(pk=entry.pk).exists()
