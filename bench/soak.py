"""Soak and faults: a mixed HTTP workload against a whole Tessera for a bounded time, with
faults injected on request, then checks that no money, record or email went wrong.

    .venv/bin/python bench/soak.py [--minutes 10] [--clients 8] [--web-workers 3]
                                   [--faults] [--pg-fault terminate|restart]

It starts its own stack on a fresh PostgreSQL database (``h6_soak_<pid>``, dropped at the
end): migrated and seeded, ``tessera serve`` (gunicorn) and ``tessera worker``, localstripe
behind bench/faultproxy.py (STRIPE_API_BASE points at the proxy) and an SMTP sink. Clients
run API checkouts (free, by card, from the wallet), wallet orders, activity completions,
credit purchases (3-D Secure ones confirmed by signed webhooks, with replays and an older
event out of order, or left to ``tessera reconcile``), portal pages in a member's signed-in
session and reads. With ``--faults``: a web worker and the task worker killed with SIGKILL,
PostgreSQL's connections terminated (or the server restarted: it is shared, so use
``restart`` sparingly), Stripe answering 500, dropping connections and holding calls beyond
the SDK's timeout. Then ``tessera reconcile``, the worker drains the email outbox, and the
checks run; the exit status is 1 if any fails.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from bench import soak_ops, soak_report  # noqa: E402
from bench.faultproxy import DEFAULT_HOLD  # noqa: E402
from bench.soak_checks import Check, run_checks  # noqa: E402
from bench.soak_faults import Injected, Plan, schedule  # noqa: E402
from bench.soak_stack import Stack, start_stack  # noqa: E402
from bench.soak_workload import Record, run_clients  # noqa: E402


@dataclass
class Settings:
    minutes: float = 10.0
    clients: int = 8
    web_workers: int = 3
    faults: bool = False
    pg_fault: str = "terminate"
    stripe_hold: float = DEFAULT_HOLD
    drain_seconds: float = 180.0
    database: str = field(default_factory=lambda: f"h6_soak_{os.getpid()}")
    logs: Path = field(default_factory=lambda: ROOT / "test-output" / "soak")


@dataclass
class Result:
    settings: Settings
    record: Record
    faults: list[Injected]
    checks: list[Check]
    memory_start: dict[str, int]
    memory_end: dict[str, int]
    reconcile_output: str
    reconciled: dict[str, str]
    lines: list[str]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def check(self, name: str) -> Check:
        return next(c for c in self.checks if c.name.startswith(name))


def _pending(stack: Stack) -> dict[str, float]:
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT id, extract(epoch FROM created_at) FROM billing_transaction "
            "WHERE status IN ('pending', 'authorized')").fetchall()  # fmt: skip
    return {r[0]: float(r[1]) for r in rows}


def _reconcile(
    stack: Stack, faults: list[Injected], wall_start: float
) -> tuple[str, dict[str, str]]:
    """``tessera reconcile`` over everything, and per fault what it settled of the payments
    begun in that fault's window."""
    before = _pending(stack)
    done = stack.tessera("reconcile", "--since", "24h", "--min-age", "0s")
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        after = dict(conn.execute("SELECT id, status FROM billing_transaction WHERE id = ANY(%s)",
                                  (list(before),)).fetchall())  # fmt: skip
    per_fault: dict[str, str] = {}
    for f in faults:
        mine = [t for t, at in before.items() if f.covers(at - wall_start, 0.0)]
        if mine:
            outcome = {s: sum(after.get(t) == s for t in mine) for s in set(after.values())}
            per_fault[f.name + str(f.start)] = f"{len(mine)} pending -> {outcome}"
    return (done.stdout + done.stderr).strip(), per_fault


def _load(stack: Stack, settings: Settings, record: Record) -> list[Injected]:
    seconds = settings.minutes * 60
    faults: list[Injected] = []
    injector = None
    if settings.faults:
        stack.proxy.hold = settings.stripe_hold
        injector = schedule(stack, seconds, Plan(settings.pg_fault), record.began, faults)
    run_clients(stack, record, settings.clients, seconds, soak_ops.pick)
    if injector is not None:
        injector.join(timeout=300)
    return faults


def run(settings: Settings) -> Result:
    with ExitStack() as resources:
        stack = start_stack(resources, settings.database, settings.web_workers, settings.logs)
        memory_start = stack.memory()
        wall_start = time.time()
        record = Record()
        faults = _load(stack, settings, record)
        elapsed = record.now()
        memory_end = stack.memory()
        output, reconciled = _reconcile(stack, faults, wall_start)
        checks = run_checks(stack, record, faults, settings.drain_seconds)
        result = Result(settings, record, faults, checks, memory_start, memory_end, output,
                        reconciled, [])  # fmt: skip
        result.lines = report(result, elapsed)
    return result


def report(result: Result, elapsed: float) -> list[str]:
    s = result.settings
    calls = result.record.calls
    lines = [f"soak: {s.minutes:g} min of load ({elapsed:.0f} s with stragglers), {s.clients} "
             f"clients, gunicorn {s.web_workers} workers, faults "
             f"{'on (pg: ' + s.pg_fault + ')' if s.faults else 'off'}"]  # fmt: skip
    lines += soak_report.by_operation(calls)
    lines += soak_report.minute_lines(soak_report.per_minute(calls, s.minutes * 60))
    lines += soak_report.memory_lines(result.memory_start, result.memory_end)
    if s.faults:
        lines += soak_report.fault_lines(result.faults, calls, result.reconciled)
    lines.append("reconcile: " + " | ".join(result.reconcile_output.splitlines()[-2:]))
    lines += soak_report.check_lines(result.checks)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--web-workers", type=int, default=3)
    parser.add_argument("--faults", action="store_true")
    parser.add_argument("--pg-fault", choices=("terminate", "restart"), default="terminate")
    parser.add_argument("--stripe-hold", type=float, default=DEFAULT_HOLD,
                        help="seconds a 'timeout' fault holds Stripe's answer (past STRIPE_TIMEOUT_SECONDS)")  # fmt: skip
    args = parser.parse_args()
    settings = Settings(minutes=args.minutes, clients=args.clients, web_workers=args.web_workers,
                        faults=args.faults, pg_fault=args.pg_fault, stripe_hold=args.stripe_hold)  # fmt: skip
    result = run(settings)
    print("\n".join(result.lines))
    raise SystemExit(0 if result.ok else 1)


if __name__ == "__main__":
    main()
