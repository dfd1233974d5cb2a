"""The events app's row locks on PostgreSQL: each needs a transaction, and two releases of
the same item offer its places to different people instead of waiting for each other."""

from __future__ import annotations

import threading

import pytest
from django.db import connections, transaction
from django.db.transaction import TransactionManagementError

from tessera.crm.models import Contact
from tessera.events.lock_objects import first_waiting, lock_event
from tessera.events.models import EventItem, WaitlistEntry
from tests.support.events import event, item

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def queue(ticket: EventItem, n: int) -> list[WaitlistEntry]:
    return [
        WaitlistEntry.objects.create(
            event_id=ticket.event_id,
            item=ticket,
            contact=Contact.objects.create(last_name=f"Waiting {i}", email=f"w{i}@example.com"),
        )
        for i in range(n)
    ]


def test_a_lock_outside_a_transaction_is_refused() -> None:
    ev = event()
    with pytest.raises(TransactionManagementError):
        lock_event(ev.pk)


def test_a_waiting_entry_locked_elsewhere_is_skipped_not_waited_for() -> None:
    ticket = item(event(), capacity=0)
    _first, second = queue(ticket, 2)
    held, done = threading.Event(), threading.Event()

    def hold_the_first() -> None:
        try:
            with transaction.atomic():
                list(first_waiting(ticket.pk)[:1])
                held.set()
                done.wait(timeout=30)
        finally:
            connections.close_all()

    holder = threading.Thread(target=hold_the_first)
    holder.start()
    try:
        assert held.wait(timeout=30)
        with transaction.atomic():
            picked = first_waiting(ticket.pk).first()
    finally:
        done.set()
        holder.join()
    assert picked == second
