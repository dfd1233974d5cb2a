"""Faults injected while the soak runs, at set shares of its duration.

Each fault records when it began and when its effects should be over (its window); the
report counts the requests that failed inside each window, and how."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from bench.soak_stack import Stack, admin_url

# Only these call Stripe: a Stripe fault explains no other operation's failure.
STRIPE_OPS = frozenset({"checkout_card", "credit"})
GRACE = 5.0  # seconds after a fault's end during which its effects may still show
# A client's kept-alive connection to a killed web worker is refused only when it is next
# used, which for a portal browser's session can be many seconds later.
STALE_CONNECTION_SECONDS = 30.0


@dataclass
class Injected:
    name: str
    detail: str
    start: float  # seconds since the soak began
    end: float = 0.0
    ops: frozenset[str] | None = None  # the operations it can fail; None: every one
    # How long after the fault a refused connection (no answer, not an error answered)
    # is still its doing: a connection the client kept open to a process it killed.
    stale_connections: float = 0.0

    def covers(self, start: float, latency: float, op: str | None = None, error: str = "") -> bool:
        if op is not None and self.ops is not None and op not in self.ops:
            return False
        if error == "ConnectionError" and self.start <= start <= self.end + self.stale_connections:
            return True
        return start <= self.end + GRACE and start + latency >= self.start


def pg_version() -> str:
    return sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]


def kill_web_worker(stack: Stack) -> str:
    _, workers = stack.gunicorn_pids()
    if not workers:
        return "no gunicorn worker found"
    os.kill(workers[0], signal.SIGKILL)
    for _ in range(200):  # gunicorn's master reaps it and forks a new one
        time.sleep(0.1)
        now = stack.gunicorn_pids()[1]
        if workers[0] not in now and len(now) >= stack.web_workers:
            break
    return f"SIGKILL gunicorn worker {workers[0]}; workers now {stack.gunicorn_pids()[1]}"


def kill_task_worker(stack: Stack, down: float = 3.0) -> str:
    proc = stack.processes["worker"]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    time.sleep(down)
    stack.start_worker()
    stack.worker_restarts += 1
    return f"SIGKILL task worker {proc.pid}, restarted after {down:.0f} s as {stack.processes['worker'].pid}"


def terminate_backends(stack: Stack) -> str:
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()", (stack.database,),
        ).fetchall()  # fmt: skip
    return f"pg_terminate_backend on {len(rows)} connections of {stack.database}"


def restart_postgres() -> str:
    version = pg_version()
    t0 = time.monotonic()
    done = subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    return (f"pg_ctlcluster {version} main restart: exit {done.returncode} in "
            f"{time.monotonic() - t0:.1f} s {done.stderr.strip()[:200]}")  # fmt: skip


def stripe_fault(stack: Stack, mode: str, seconds: float, fraction: float) -> str:
    stack.proxy.inject(mode, seconds=seconds, fraction=fraction)
    time.sleep(seconds)
    hit = stack.proxy.injected[mode]
    return f"Stripe {mode} for {seconds:.0f} s on {fraction:.0%} of calls ({hit} hit so far)"


@dataclass
class Plan:
    pg_fault: str = "terminate"  # or "restart"
    stripe_seconds: float = 8.0

    def steps(self) -> list[tuple[float, str]]:
        """(share of the run, fault) in the order they are injected."""
        return [(0.15, "kill_web_worker"), (0.25, "stripe_error"), (0.35, "kill_task_worker"),
                (0.45, f"pg_{self.pg_fault}"), (0.55, "stripe_drop"), (0.65, "stripe_timeout"),
                (0.80, "kill_web_worker")]  # fmt: skip


def _run_one(stack: Stack, name: str, plan: Plan) -> str:
    if name == "kill_web_worker":
        return kill_web_worker(stack)
    if name == "kill_task_worker":
        return kill_task_worker(stack)
    if name == "pg_terminate":
        return terminate_backends(stack)
    if name == "pg_restart":
        return restart_postgres()
    mode = name.removeprefix("stripe_")
    fraction = 0.5 if mode == "timeout" else 1.0  # a timeout holds a web thread: half is plenty
    return stripe_fault(stack, mode, plan.stripe_seconds, fraction)


def schedule(stack: Stack, seconds: float, plan: Plan, began: float,
             out: list[Injected]) -> threading.Thread:  # fmt: skip
    """Inject ``plan``'s faults in a thread, at their shares of ``seconds`` from ``began``."""

    def run() -> None:
        for share, name in plan.steps():
            wait = began + share * seconds - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            ops = STRIPE_OPS if name.startswith("stripe_") else None
            stale = STALE_CONNECTION_SECONDS if name == "kill_web_worker" else 0.0
            fault = Injected(name, "", time.monotonic() - began, ops=ops, stale_connections=stale)
            out.append(fault)
            try:
                fault.detail = _run_one(stack, name, plan)
            except Exception as exc:  # report it with the fault; the soak goes on
                fault.detail = f"injection failed: {exc!r}"
            fault.end = time.monotonic() - began
            if name == "stripe_timeout":
                fault.end += stack.proxy.hold  # the held calls answer (fail) this much later

    thread = threading.Thread(target=run, name="soak-faults", daemon=True)
    thread.start()
    return thread
