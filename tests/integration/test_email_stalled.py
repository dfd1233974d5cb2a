"""Emails whose send job died with a killed worker are sent again, and never twice at once:
a send holds a lease (``sending_since``) that a second job for the same email respects."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tessera.notifications.models import OutboundEmail
from tessera.notifications.services import deliver_email, queue_email, requeue_stalled

pytestmark = pytest.mark.django_db

STALLED = 900.0


@pytest.fixture(autouse=True)
def stalled_after(settings: Any) -> None:
    settings.EMAIL_STALLED_SECONDS = STALLED


def welcome() -> OutboundEmail:
    return queue_email(
        "welcome", to="ada@example.com", context={"first_name": "Ada", "message": "Hi."}
    )


def aged(email: OutboundEmail, seconds: float, **fields: Any) -> None:
    """Make ``email`` look ``seconds`` old, with ``fields`` set, as a killed worker leaves it."""
    then = timezone.now() - timedelta(seconds=seconds)
    OutboundEmail.objects.filter(pk=email.pk).update(created_at=then, **fields)


def jobs_for(email: OutboundEmail) -> int:
    return sum(1 for job in DBTaskResult.objects.all() if email.pk in job.args_kwargs["args"])


def test_a_send_interrupted_long_ago_is_given_a_new_job() -> None:
    email = welcome()
    stale = timezone.now() - timedelta(seconds=STALLED + 60)
    aged(email, STALLED + 120, attempts=1, sending_since=stale)
    requeue_stalled()
    assert jobs_for(email) == 2


def test_a_requeued_email_is_marked_retrying_with_its_lease_cleared() -> None:
    email = welcome()
    stale = timezone.now() - timedelta(seconds=STALLED + 60)
    aged(email, STALLED + 120, attempts=1, sending_since=stale)
    requeue_stalled()
    email.refresh_from_db()
    assert (email.status, email.sending_since) == (OutboundEmail.Status.RETRYING, None)


def test_a_send_still_within_its_lease_is_left_alone() -> None:
    email = welcome()
    aged(email, STALLED + 120, attempts=1, sending_since=timezone.now() - timedelta(seconds=5))
    assert requeue_stalled() == 0


def test_a_queued_email_whose_job_never_ran_is_given_a_new_job() -> None:
    email = welcome()
    aged(email, STALLED + 60)
    assert requeue_stalled() == 1


def test_a_recent_queued_email_is_left_to_its_own_job() -> None:
    welcome()
    assert requeue_stalled() == 0


def test_a_sent_email_is_never_requeued() -> None:
    email = welcome()
    deliver_email(email.pk)
    aged(email, STALLED + 60)
    assert requeue_stalled() == 0


def test_a_second_job_during_a_send_sends_nothing() -> None:
    email = welcome()
    OutboundEmail.objects.filter(pk=email.pk).update(
        attempts=1, sending_since=timezone.now() - timedelta(seconds=5)
    )
    deliver_email(email.pk)
    assert mail.outbox == []


def test_a_second_job_during_a_send_counts_no_attempt() -> None:
    email = welcome()
    OutboundEmail.objects.filter(pk=email.pk).update(
        attempts=1, sending_since=timezone.now() - timedelta(seconds=5)
    )
    deliver_email(email.pk)
    email.refresh_from_db()
    assert email.attempts == 1


def test_a_job_after_a_stale_lease_sends_the_email() -> None:
    email = welcome()
    OutboundEmail.objects.filter(pk=email.pk).update(
        attempts=1, sending_since=timezone.now() - timedelta(seconds=STALLED + 1)
    )
    assert deliver_email(email.pk) == OutboundEmail.Status.SENT


def test_a_sent_email_holds_no_lease() -> None:
    email = welcome()
    deliver_email(email.pk)
    email.refresh_from_db()
    assert email.sending_since is None
