"""Emails are an outbox: queued in the caller's transaction, sent by the worker after commit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from email.message import Message
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tessera.crm.inputs import ContactInput
from tessera.crm.models import Contact, TimelineEntry
from tessera.crm.services import create_contact
from tessera.notifications.models import OutboundEmail
from tessera.notifications.services import queue_email, retry_delay
from tests.support.smtp import Inbox, free_port, smtp_server

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def smtp(settings) -> Iterator[Inbox]:  # type: ignore[no-untyped-def]
    with smtp_server() as (inbox, port):
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = port
        yield inbox


def run_worker() -> None:
    call_command("worker", batch=True, interval=0.0, verbosity=0, stdout=StringIO())


def welcome(**kw):  # type: ignore[no-untyped-def]
    return queue_email("welcome", context={"first_name": "Ada", "message": "Hi."}, **kw)


class Boom(Exception):
    pass


def test_email_queued_in_a_rolled_back_transaction_is_never_sent(smtp: Inbox) -> None:
    with pytest.raises(Boom), transaction.atomic():
        contact = create_contact(ContactInput(last_name="Lovelace", email="ada@example.com")).record
        welcome(to="ada@example.com", contact=contact)
        raise Boom
    assert OutboundEmail.objects.count() == 0
    assert DBTaskResult.objects.count() == 0
    run_worker()
    assert smtp.messages == []


@pytest.fixture
def committed(smtp: Inbox) -> tuple[Contact, OutboundEmail]:
    """A welcome email to Ada queued in a committed transaction, and her contact."""
    with transaction.atomic():
        contact = create_contact(
            ContactInput(first_name="Ada", last_name="Lovelace", email="ada@example.com")
        ).record
        queued = welcome(to="ada@example.com", contact=contact)
    return contact, queued


def parts_of(msg: Message) -> dict[str, str]:
    """The message's bodies by content type."""
    return {
        p.get_content_type(): p.get_payload(decode=True).decode()
        for p in msg.walk()
        if not p.is_multipart()
    }


def test_a_committed_email_is_not_sent_by_the_request_itself(
    smtp: Inbox, committed: tuple[Contact, OutboundEmail]
) -> None:
    assert smtp.messages == []


def test_the_worker_delivers_a_committed_email_to_its_recipient(
    smtp: Inbox, committed: tuple[Contact, OutboundEmail]
) -> None:
    _, queued = committed
    run_worker()
    (msg,) = smtp.messages
    assert msg["To"] == "ada@example.com"
    assert msg["Subject"] == "Welcome to Tessera, Ada"
    assert msg["X-Tessera-Email-Id"] == queued.pk


def test_a_delivered_email_has_both_bodies(
    smtp: Inbox, committed: tuple[Contact, OutboundEmail]
) -> None:
    run_worker()
    parts = parts_of(smtp.messages[0])
    assert set(parts) == {"text/plain", "text/html"}
    assert "Hello Ada" in parts["text/plain"]
    assert "<strong>Tessera</strong>" in parts["text/html"]


def test_a_delivered_email_is_marked_sent_after_one_attempt(
    smtp: Inbox, committed: tuple[Contact, OutboundEmail]
) -> None:
    _, queued = committed
    run_worker()
    queued.refresh_from_db()
    assert queued.status == OutboundEmail.Status.SENT
    assert queued.attempts == 1


def test_a_delivered_email_is_on_the_contacts_timeline(
    smtp: Inbox, committed: tuple[Contact, OutboundEmail]
) -> None:
    contact, queued = committed
    run_worker()
    assert TimelineEntry.objects.filter(
        contact=contact, kind="email_sent", object_id=queued.pk
    ).exists()


def test_a_delivered_email_is_never_sent_twice(
    smtp: Inbox, committed: tuple[Contact, OutboundEmail]
) -> None:
    run_worker()
    run_worker()  # nothing left to do
    assert len(smtp.messages) == 1


@pytest.fixture
def unreachable_smtp(settings) -> None:  # type: ignore[no-untyped-def]
    """An SMTP server nobody listens on; two attempts allowed."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()  # nothing listens here
    settings.EMAIL_TIMEOUT = 2
    settings.EMAIL_MAX_ATTEMPTS = 2


def queued_welcome() -> OutboundEmail:
    with transaction.atomic():
        return welcome(to="ada@example.com")


def test_a_failed_send_is_kept_for_a_retry(unreachable_smtp: None) -> None:
    email = queued_welcome()
    run_worker()
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.RETRYING
    assert email.attempts == 1
    assert "Connection" in email.last_error or "refused" in email.last_error.lower()


def test_a_failed_send_schedules_its_retry_after_the_back_off(unreachable_smtp: None) -> None:
    email = queued_welcome()
    before = timezone.now()
    run_worker()
    email.refresh_from_db()
    assert email.next_attempt_at is not None
    assert email.next_attempt_at >= before + retry_delay(1) - timedelta(seconds=1)


def test_the_retry_of_a_failed_send_waits_for_its_back_off(unreachable_smtp: None) -> None:
    queued_welcome()
    run_worker()
    assert DBTaskResult.objects.ready().count() == 0  # not run at once
    assert DBTaskResult.objects.filter(status="READY").count() == 1


def test_a_send_failing_on_its_last_allowed_attempt_gives_up(unreachable_smtp: None) -> None:
    email = queued_welcome()
    run_worker()
    # Time passes: make the retry due and run it; the second failure is the last allowed.
    DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())
    run_worker()
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.FAILED
    assert email.attempts == 2
    assert DBTaskResult.objects.filter(status="READY").count() == 0


def test_retry_delay_grows_and_is_capped(settings) -> None:  # type: ignore[no-untyped-def]
    settings.EMAIL_RETRY_BASE_SECONDS = 30
    settings.EMAIL_RETRY_MAX_SECONDS = 600
    assert [retry_delay(n).total_seconds() for n in range(1, 7)] == [30, 60, 120, 240, 480, 600]
