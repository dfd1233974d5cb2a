"""Emails are an outbox: queued in the caller's transaction, sent by the worker after commit."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tessera.crm.models import TimelineEntry
from tessera.crm.services import create_contact
from tessera.notifications.models import OutboundEmail
from tessera.notifications.services import queue_email, retry_delay
from tests.smtp import Inbox, free_port, smtp_server

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
        contact = create_contact({"last_name": "Lovelace", "email": "ada@example.com"}).record
        welcome(to="ada@example.com", contact=contact)
        raise Boom
    assert OutboundEmail.objects.count() == 0
    assert DBTaskResult.objects.count() == 0
    run_worker()
    assert smtp.messages == []


def test_committed_email_is_delivered_by_the_worker_with_both_bodies(smtp: Inbox) -> None:
    with transaction.atomic():
        contact = create_contact(
            {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}
        ).record
        queued = welcome(to="ada@example.com", contact=contact)
    assert smtp.messages == []  # nothing is sent by the web request itself

    run_worker()

    assert len(smtp.messages) == 1
    msg = smtp.messages[0]
    assert msg["To"] == "ada@example.com"
    assert msg["Subject"] == "Welcome to Tessera, Ada"
    assert msg["X-Tessera-Email-Id"] == queued.pk
    parts = {
        p.get_content_type(): p.get_payload(decode=True).decode()
        for p in msg.walk()
        if not p.is_multipart()
    }
    assert set(parts) == {"text/plain", "text/html"}
    assert "Hello Ada" in parts["text/plain"] and "<strong>Tessera</strong>" in parts["text/html"]

    queued.refresh_from_db()
    assert queued.status == OutboundEmail.Status.SENT and queued.attempts == 1
    assert TimelineEntry.objects.filter(
        contact=contact, kind="email_sent", object_id=queued.pk
    ).exists()

    run_worker()  # nothing left to do: never sent twice
    assert len(smtp.messages) == 1


def test_failed_send_retries_with_back_off_then_gives_up(settings) -> None:  # type: ignore[no-untyped-def]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()  # nothing listens here
    settings.EMAIL_TIMEOUT = 2
    settings.EMAIL_MAX_ATTEMPTS = 2
    with transaction.atomic():
        email = welcome(to="ada@example.com")

    before = timezone.now()
    run_worker()
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.RETRYING
    assert email.attempts == 1
    assert "Connection" in email.last_error or "refused" in email.last_error.lower()
    assert email.next_attempt_at is not None
    assert email.next_attempt_at >= before + retry_delay(1) - timedelta(seconds=1)
    pending = DBTaskResult.objects.ready()
    assert pending.count() == 0  # the retry waits for its back-off, not run at once
    assert DBTaskResult.objects.filter(status="READY").count() == 1

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
