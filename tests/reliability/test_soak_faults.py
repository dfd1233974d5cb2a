"""A short soak with faults (bench/soak.py): about 75 s of mixed load over HTTP against a
real stack (gunicorn, the worker, localstripe behind the fault proxy, an SMTP server) on a
PostgreSQL database of its own, with a web worker and the task worker killed, the database's
connections terminated, and Stripe answering 500, dropping connections and holding answers
past the SDK's timeout. Then reconcile and the checks, one test each.

The soak runs once for the module. PostgreSQL is terminated, never restarted: the suite's own
connection shares the server (``bench/soak.py --pg-fault restart`` does the restart)."""

from __future__ import annotations

import os

import pytest
from bench.soak import Result, Settings, run
from bench.soak_faults import STRIPE_OPS

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

FAULTS = ("kill_web_worker", "stripe_error", "kill_task_worker", "pg_terminate",
          "stripe_drop", "stripe_timeout")  # fmt: skip


@pytest.fixture(scope="module")
def soak(tmp_path_factory: pytest.TempPathFactory) -> Result:
    from django.conf import settings

    db = settings.DATABASES["default"]
    admin = f"postgres://{db['USER'] or 'postgres'}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/postgres"
    previous = os.environ.get("TESSERA_SOAK_ADMIN_URL")
    os.environ["TESSERA_SOAK_ADMIN_URL"] = admin
    try:
        result = run(Settings(minutes=1.25, clients=6, web_workers=2, faults=True,
                              pg_fault="terminate", drain_seconds=150,
                              database=f"h6_soak_test_{os.getpid()}",
                              logs=tmp_path_factory.mktemp("soak-logs")))  # fmt: skip
    finally:
        if previous is None:
            os.environ.pop("TESSERA_SOAK_ADMIN_URL", None)
        else:
            os.environ["TESSERA_SOAK_ADMIN_URL"] = previous
    print("\n".join(result.lines))  # noqa: T201 - the report, shown with -s or on failure
    return result


def test_the_load_ran(soak: Result) -> None:
    answered = [c for c in soak.record.calls if 200 <= c.status < 300]
    assert len(answered) > 200


def test_every_write_kind_succeeded_at_least_once(soak: Result) -> None:
    kinds = {c.op for c in soak.record.calls if c.status == 201}
    assert kinds >= {"checkout_free", "checkout_card", "checkout_wallet", "order", "completion",
                     "credit"}  # fmt: skip


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_was_injected(soak: Result, fault: str) -> None:
    details = [f.detail for f in soak.faults if f.name == fault]
    assert details, soak.faults
    assert not any("injection failed" in d for d in details), details


def test_stripe_faults_reached_payments(soak: Result) -> None:
    """The injected Stripe failures surfaced as 502 gateway_unavailable, not as 500s."""
    unavailable = [c for c in soak.record.calls if c.op in STRIPE_OPS and c.status == 502]
    assert unavailable


def test_no_server_error_outside_fault_windows(soak: Result) -> None:
    check = soak.check("no 5xx")
    assert check.ok, check.detail


def test_bench_clients_raised_nothing(soak: Result) -> None:
    check = soak.check("the bench's own clients")
    assert check.ok, check.detail


def test_repeated_keys_replay(soak: Result) -> None:
    check = soak.check("a repeated key")
    assert check.ok, check.detail


def test_every_created_id_exists(soak: Result) -> None:
    check = soak.check("every id")
    assert check.ok, check.detail


def test_ledger_verifies(soak: Result) -> None:
    check = soak.check("tessera ledger verify")
    assert check.ok, check.detail


def test_nothing_oversold(soak: Result) -> None:
    check = soak.check("no item or event oversold")
    assert check.ok, check.detail


def test_no_negative_wallet(soak: Result) -> None:
    check = soak.check("no negative wallet")
    assert check.ok, check.detail


def test_stripe_money_equals_ledger(soak: Result) -> None:
    check = soak.check("money captured at Stripe")
    assert check.ok, check.detail


def test_nothing_lost(soak: Result) -> None:
    check = soak.check("nothing lost")
    assert check.ok, check.detail


def test_nothing_invented(soak: Result) -> None:
    check = soak.check("nothing invented")
    assert check.ok, check.detail


def test_nothing_doubled(soak: Result) -> None:
    check = soak.check("nothing doubled")
    assert check.ok, check.detail


def test_every_paid_answer_is_captured(soak: Result) -> None:
    check = soak.check("every payment answered 201")
    assert check.ok, check.detail


def test_every_email_sent_exactly_once(soak: Result) -> None:
    check = soak.check("every queued email")
    assert check.ok, check.detail


def test_gunicorn_respawned_its_workers(soak: Result) -> None:
    assert soak.memory_end["workers"] == soak.settings.web_workers


def test_task_worker_alive_after_its_kill_and_the_database_fault(soak: Result) -> None:
    assert soak.memory_end["task_worker"] > 0
