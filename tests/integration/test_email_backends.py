"""The key email behaviours on both Tasks backends: the database outbox (the default) and
RQ on a real Redis, each run by ``tessera worker --batch`` (db_worker, or an in-process RQ
worker in burst mode).

The RQ runs need Redis at TESSERA_TEST_REDIS_URL (default database 7 on 127.0.0.1): without
it they skip and say why, unless TESSERA_REQUIRE_REDIS=1, which turns that into a failure.
They remove only RQ's own keys (``rq:*``) from that database."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django_tasks_db.models import DBTaskResult
from redis import Redis
from redis.exceptions import RedisError

from tessera.notifications.models import OutboundEmail
from tessera.notifications.services import queue_email
from tessera.notifications.tasks import send_email
from tests.support.smtp import Inbox, free_port, smtp_server

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_URL = os.environ.get("TESSERA_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
RQ_BACKEND = "tessera.core.rq.OnCommitRQBackend"
RETRY_SECONDS = 2.0  # RQ schedules to the whole second: under 2 s a retry could come early


def redis_or_skip() -> Redis:
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except RedisError as exc:
        why = f"Redis unreachable at {REDIS_URL} ({exc}): the rq backend's email tests need it"
        if os.environ.get("TESSERA_REQUIRE_REDIS") == "1":
            pytest.fail(f"{why}; TESSERA_REQUIRE_REDIS=1 requires them")
        pytest.skip(why)
    return client


def clear_rq(client: Redis) -> None:
    for key in client.scan_iter("rq:*"):
        client.delete(key)


@pytest.fixture(params=["database", "rq"])
def backend(request: pytest.FixtureRequest, settings) -> Iterator[str]:  # type: ignore[no-untyped-def]
    if request.param == "database":
        settings.TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
        yield "database"
        return
    client = redis_or_skip()
    clear_rq(client)
    settings.RQ_QUEUES = {"default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 60}}
    settings.TASKS = {"default": {"BACKEND": RQ_BACKEND, "QUEUES": ["default"]}}
    try:
        yield "rq"
    finally:
        clear_rq(client)
        client.close()


@pytest.fixture
def smtp(settings, backend: str) -> Iterator[Inbox]:  # type: ignore[no-untyped-def]
    with smtp_server() as (inbox, port):
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = port
        settings.EMAIL_TIMEOUT = 2
        settings.EMAIL_RETRY_BASE_SECONDS = RETRY_SECONDS
        yield inbox


def run_worker() -> None:
    call_command("worker", batch=True, interval=0.0, verbosity=0, stdout=StringIO())


def pending_jobs(backend: str) -> int:
    """Jobs a worker could take now or later."""
    if backend == "database":
        return DBTaskResult.objects.filter(status="READY").count()
    import django_rq
    from rq.registry import ScheduledJobRegistry

    queue = django_rq.get_queue("default")
    return int(queue.count) + ScheduledJobRegistry(queue=queue).count


def welcome(to: str = "ada@example.com") -> OutboundEmail:
    return queue_email("welcome", to=to, context={"first_name": "Ada", "message": "Hi."})


class Boom(Exception):
    pass


def rolled_back_email() -> None:
    with pytest.raises(Boom), transaction.atomic():
        welcome()
        raise Boom


def test_rolled_back_email_is_never_sent(smtp: Inbox) -> None:
    rolled_back_email()
    run_worker()
    assert smtp.messages == []


def test_rolled_back_email_leaves_no_job(smtp: Inbox, backend: str) -> None:
    rolled_back_email()
    assert pending_jobs(backend) == 0


def test_committed_email_is_sent(smtp: Inbox) -> None:
    with transaction.atomic():
        welcome()
    run_worker()
    assert len(smtp.messages) == 1


def test_committed_email_is_marked_sent(smtp: Inbox) -> None:
    with transaction.atomic():
        email = welcome()
    run_worker()
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT


def test_second_worker_run_sends_nothing_more(smtp: Inbox) -> None:
    with transaction.atomic():
        welcome()
    run_worker()
    run_worker()
    assert len(smtp.messages) == 1


def test_a_job_delivered_twice_sends_the_email_once(smtp: Inbox) -> None:
    """A queue may deliver a job twice (a worker lost mid-job): the email row decides."""
    with transaction.atomic():
        email = welcome()
        send_email.enqueue(email.pk)
    run_worker()
    assert len(smtp.messages) == 1


class HeldTransaction:
    """Queues an email in another thread's transaction and keeps it open until released."""

    def __init__(self) -> None:
        self.queued, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with transaction.atomic():
                welcome()
                self.queued.set()
                self.release.wait(30)
        finally:
            connection.close()

    def __enter__(self) -> HeldTransaction:
        self.thread.start()
        assert self.queued.wait(30), "the email was never queued"
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join(30)


@pytest.mark.postgres
def test_worker_running_before_the_commit_sends_nothing(smtp: Inbox) -> None:
    with HeldTransaction():
        run_worker()
        sent_before_commit = len(smtp.messages)
    assert sent_before_commit == 0


@pytest.mark.postgres
def test_email_is_sent_after_commit_though_a_worker_ran_before_it(smtp: Inbox) -> None:
    """A job run before its row commits would find no email and drop it: it must wait."""
    with HeldTransaction():
        run_worker()
    run_worker()
    assert len(smtp.messages) == 1


def failed_once(settings) -> OutboundEmail:  # type: ignore[no-untyped-def]
    """An email whose first attempt met no SMTP server; the next one will find ours."""
    live_port = settings.EMAIL_PORT
    settings.EMAIL_PORT = free_port()  # nothing listens here
    with transaction.atomic():
        email = welcome()
    run_worker()
    settings.EMAIL_PORT = live_port
    email.refresh_from_db()
    return email


def test_failed_send_is_kept_for_a_retry(smtp: Inbox, settings) -> None:  # type: ignore[no-untyped-def]
    email = failed_once(settings)
    assert email.status == OutboundEmail.Status.RETRYING


def test_retry_waits_for_its_back_off(smtp: Inbox, settings) -> None:  # type: ignore[no-untyped-def]
    # A back-off far longer than any worker run: on a loaded machine the first run's exit
    # alone took a minute once, and a 2 s back-off was then rightly due.
    settings.EMAIL_RETRY_BASE_SECONDS = 600
    email = failed_once(settings)
    run_worker()
    email.refresh_from_db()
    assert email.attempts == 1


def test_retry_after_its_back_off_sends_the_email(smtp: Inbox, settings) -> None:  # type: ignore[no-untyped-def]
    email = failed_once(settings)
    assert email.next_attempt_at is not None
    time.sleep(RETRY_SECONDS + 1.1)
    run_worker()
    assert len(smtp.messages) == 1
