"""/healthz and /readyz: what each answers, what each check reports, and that probes get
no session, no redirect and no rate limit; the worker's heartbeat that /readyz reads."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.db import DatabaseError
from django.test import Client
from django.utils import timezone

from tessera.core import health, scheduler
from tessera.core.models import WorkerHeartbeat
from tessera.core.scheduler import run_in_background

EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]


def body(response: Any) -> dict[str, Any]:
    return dict(json.loads(response.content))


@pytest.fixture
def beating(db: None) -> WorkerHeartbeat:
    health.record_heartbeat("worker-a")
    return WorkerHeartbeat.objects.get(name="worker-a")


@pytest.fixture
def fresh_migration_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-process "migrations are current" memo, forgotten for this test only."""
    monkeypatch.setattr(health, "_migrations_current", False)


# --- /healthz ---------------------------------------------------------------------------------


def test_healthz_answers_ok() -> None:
    """No database mark: a query here would fail the test."""
    assert body(Client().get("/healthz")) == {"status": "ok"}


def test_healthz_is_200() -> None:
    assert Client().get("/healthz").status_code == 200


def test_healthz_sets_no_cookie() -> None:
    assert not Client().get("/healthz").cookies


def test_healthz_is_not_cached() -> None:
    assert "no-store" in Client().get("/healthz")["Cache-Control"]


def test_healthz_refuses_post() -> None:
    assert Client().post("/healthz").status_code == 405


def test_healthz_is_never_rate_limited() -> None:
    client = Client()
    statuses = {client.get("/healthz").status_code for _ in range(100)}
    assert statuses == {200}


def test_healthz_is_not_redirected_to_https(settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT, settings.SECURE_REDIRECT_EXEMPT = True, EXEMPT
    assert Client().get("/healthz").status_code == 200


# --- /readyz ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_readyz_is_200_with_a_recent_heartbeat(beating: WorkerHeartbeat) -> None:
    assert Client().get("/readyz").status_code == 200


@pytest.mark.django_db
def test_readyz_reports_every_check_ok(beating: WorkerHeartbeat) -> None:
    assert body(Client().get("/readyz")) == {
        "status": "ok",
        "checks": {"database": "ok", "migrations": "ok", "worker": "ok"},
    }


@pytest.mark.django_db
def test_readyz_is_503_when_the_heartbeat_is_stale(beating: WorkerHeartbeat) -> None:
    WorkerHeartbeat.objects.update(beat_at=timezone.now() - timedelta(seconds=412))
    assert Client().get("/readyz").status_code == 503


@pytest.mark.django_db
def test_readyz_names_a_stale_worker(beating: WorkerHeartbeat) -> None:
    WorkerHeartbeat.objects.update(beat_at=timezone.now() - timedelta(seconds=412))
    assert body(Client().get("/readyz"))["checks"]["worker"] == "last heartbeat 412 s ago"


@pytest.mark.django_db
def test_readyz_says_unavailable_when_a_check_fails(beating: WorkerHeartbeat) -> None:
    WorkerHeartbeat.objects.update(beat_at=timezone.now() - timedelta(hours=1))
    assert body(Client().get("/readyz"))["status"] == "unavailable"


@pytest.mark.django_db
def test_the_staleness_threshold_is_a_setting(beating: WorkerHeartbeat, settings: Any) -> None:
    settings.TESSERA_WORKER_HEARTBEAT_SECONDS = 30
    WorkerHeartbeat.objects.update(beat_at=timezone.now() - timedelta(seconds=60))
    assert Client().get("/readyz").status_code == 503


@pytest.mark.django_db
def test_the_newest_heartbeat_counts(beating: WorkerHeartbeat) -> None:
    """One worker of two gone quiet: the deployment still has a worker."""
    health.record_heartbeat("worker-b", now=timezone.now() - timedelta(hours=2))
    assert Client().get("/readyz").status_code == 200


@pytest.mark.django_db
def test_readyz_without_any_heartbeat_names_the_worker() -> None:
    assert body(Client().get("/readyz"))["checks"]["worker"] == "no heartbeat yet"


@pytest.mark.django_db
@pytest.mark.usefixtures("fresh_migration_check")
def test_readyz_is_503_with_unapplied_migrations(
    beating: WorkerHeartbeat, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "unapplied_migrations", lambda: 3)
    assert Client().get("/readyz").status_code == 503


@pytest.mark.django_db
@pytest.mark.usefixtures("fresh_migration_check")
def test_readyz_counts_unapplied_migrations(
    beating: WorkerHeartbeat, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(health, "unapplied_migrations", lambda: 3)
    assert body(Client().get("/readyz"))["checks"]["migrations"] == "3 unapplied"


@pytest.mark.django_db
@pytest.mark.usefixtures("fresh_migration_check")
def test_current_migrations_are_checked_once_per_process(
    beating: WorkerHeartbeat, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(health, "unapplied_migrations", lambda: calls.append(1) or 0)
    for _ in range(3):
        Client().get("/readyz")
    assert len(calls) == 1


@pytest.mark.django_db
@pytest.mark.usefixtures("fresh_migration_check")
def test_missing_migrations_are_checked_again(
    beating: WorkerHeartbeat, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Until the schema is current, every probe looks again (a migrate may have run)."""
    answers = iter([2, 0])
    monkeypatch.setattr(health, "unapplied_migrations", lambda: next(answers))
    Client().get("/readyz")
    assert Client().get("/readyz").status_code == 200


@pytest.mark.django_db
def test_the_real_migration_plan_is_empty_in_tests() -> None:
    assert health.unapplied_migrations() == 0


class _BrokenConnection:
    def cursor(self) -> Any:
        raise DatabaseError("connection refused")


@pytest.mark.django_db
def test_readyz_is_503_without_a_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "connection", _BrokenConnection())
    assert Client().get("/readyz").status_code == 503


@pytest.mark.django_db
def test_readyz_names_the_unreachable_database(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health, "connection", _BrokenConnection())
    checks = body(Client().get("/readyz"))["checks"]
    assert checks["database"] == "unreachable (DatabaseError)"


@pytest.mark.django_db
def test_readyz_skips_the_other_checks_without_a_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(health, "connection", _BrokenConnection())
    checks = body(Client().get("/readyz"))["checks"]
    assert (checks["migrations"], checks["worker"]) == ("not checked", "not checked")


@pytest.mark.django_db
def test_readyz_creates_no_session(beating: WorkerHeartbeat) -> None:
    Client().get("/readyz")
    assert Session.objects.count() == 0


@pytest.mark.django_db
def test_readyz_sets_no_cookie(beating: WorkerHeartbeat) -> None:
    assert not Client().get("/readyz").cookies


@pytest.mark.django_db
def test_readyz_is_not_redirected_to_https(beating: WorkerHeartbeat, settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT, settings.SECURE_REDIRECT_EXEMPT = True, EXEMPT
    assert Client().get("/readyz").status_code == 200


def test_other_pages_are_still_redirected_to_https(settings: Any) -> None:
    """The exemption is for the probes' exact paths, not a prefix."""
    settings.SECURE_SSL_REDIRECT, settings.SECURE_REDIRECT_EXEMPT = True, EXEMPT
    assert Client().get("/healthz/extra").status_code == 301


@pytest.mark.django_db
def test_operations_paths_are_not_in_the_openapi_document() -> None:
    paths = body(Client().get("/api/v1/openapi.json"))["paths"]
    assert [p for p in paths if p.rstrip("/").endswith(("healthz", "readyz", "metrics"))] == []


# --- the heartbeat ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_heartbeat_is_one_row_per_worker() -> None:
    health.record_heartbeat("worker-a")
    health.record_heartbeat("worker-a")
    assert WorkerHeartbeat.objects.filter(name="worker-a").count() == 1


@pytest.mark.django_db
def test_a_heartbeat_moves_its_time_on(beating: WorkerHeartbeat) -> None:
    later = beating.beat_at + timedelta(seconds=15)
    health.record_heartbeat("worker-a", now=later)
    assert WorkerHeartbeat.objects.get(name="worker-a").beat_at == later


@pytest.mark.django_db
def test_old_heartbeats_are_forgotten() -> None:
    health.record_heartbeat("gone", now=timezone.now() - timedelta(days=8))
    health.forget_old_heartbeats()
    assert not WorkerHeartbeat.objects.filter(name="gone").exists()


@pytest.mark.django_db
def test_recent_heartbeats_are_kept(beating: WorkerHeartbeat) -> None:
    health.forget_old_heartbeats()
    assert WorkerHeartbeat.objects.filter(name="worker-a").exists()


@pytest.mark.django_db(transaction=True)
def test_the_workers_periodic_loop_beats(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop is stopped and joined before the table is read: on SQLite a read while the
    loop's thread writes fails with "table is locked"."""
    settings.TESSERA_PERIODIC_TASKS = {}
    beaten = threading.Event()
    real_beat = scheduler.record_heartbeat

    def beat(name: str) -> None:
        real_beat(name)
        beaten.set()

    monkeypatch.setattr(scheduler, "record_heartbeat", beat)
    stop = threading.Event()
    thread = run_in_background(stop, every=0.05)
    try:
        beaten.wait(timeout=10)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert WorkerHeartbeat.objects.get().name == health.worker_name()
