"""``tessera worker`` outlives a lost database connection instead of exiting with every
email still to send (the soak's pg_terminate_backend and PostgreSQL restart)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from django.db import OperationalError

from tessera.backoffice.management.commands import worker

OPTIONS = {"queues": "*", "interval": 0.0, "verbosity": 0}


class FlakyDbWorker:
    """Stands for django_tasks_db's db_worker: loses the database once, then runs."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        self.calls += 1
        if self.calls == 1:
            raise OperationalError("terminating connection due to administrator command")


@pytest.fixture
def flaky(monkeypatch: pytest.MonkeyPatch) -> FlakyDbWorker:
    fake = FlakyDbWorker()
    monkeypatch.setattr(worker, "call_command", fake)
    monkeypatch.setattr(worker.time, "sleep", lambda seconds: None)
    # The reconnect itself is Django's (it closes the broken connections); what is tested
    # here is that the worker goes on. No real connection is touched.
    monkeypatch.setattr(worker, "close_old_connections", lambda: None)
    monkeypatch.setattr(worker, "connections", SimpleNamespace(close_all=lambda: None))
    return fake


def test_the_worker_runs_again_after_losing_the_database(flaky: FlakyDbWorker) -> None:
    worker.Command()._work_db({**OPTIONS, "batch": False})
    assert flaky.calls == 2


def test_a_batch_run_reports_a_lost_database(flaky: FlakyDbWorker) -> None:
    with pytest.raises(OperationalError):
        worker.Command()._work_db({**OPTIONS, "batch": True})
