"""The soak's stack: a fresh PostgreSQL database, migrated and seeded, localstripe behind the
fault proxy, an SMTP sink, ``tessera serve`` (gunicorn) and ``tessera worker``.

Every child runs in its own process group, so stopping one stops everything it started,
and ports are picked free at start."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from bench.faultproxy import FaultProxy

from tests.support.smtp import Inbox, free_port, smtp_server
from tests.support.stack import wait_http, wait_port

ROOT = Path(__file__).resolve().parent.parent


def admin_url() -> str:
    """The server's maintenance database, where the soak creates and drops its own."""
    return os.environ.get("TESSERA_SOAK_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")


STRIPE_KEY = "sk_test_tessera_soak"
WEBHOOK_SECRET = "whsec_tessera_soak"  # noqa: S105 - the soak's own test secret
UNLIMITED = "100000/m"


def server_url(database: str) -> str:
    return admin_url().rsplit("/", 1)[0] + f"/{database}"


def create_database(name: str) -> str:
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return server_url(name)


def drop_database(name: str) -> None:
    for _ in range(10):  # PostgreSQL may still be coming back from a restart fault
        try:
            with psycopg.connect(admin_url(), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except psycopg.OperationalError:
            time.sleep(1)


def children_of(pid: int) -> list[int]:
    """Direct children of ``pid``, from /proc (gunicorn's workers under its master)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name is in parentheses and may hold spaces: read after the last ')'
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class Stack:
    database: str
    db_url: str
    env: dict[str, str]
    seed: dict[str, Any]
    inbox: Inbox
    proxy: FaultProxy
    localstripe: str
    base: str
    logs: Path
    web_workers: int
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    worker_restarts: int = 0

    def gunicorn_pids(self) -> tuple[int, list[int]]:
        master = self.processes["web"].pid
        return master, children_of(master)

    def memory(self) -> dict[str, int]:
        """RSS in KiB: gunicorn's master and workers together, and its workers alone."""
        master, workers = self.gunicorn_pids()
        worker_rss = sum(rss_kib(p) for p in workers)
        return {"gunicorn_total": rss_kib(master) + worker_rss, "gunicorn_workers": worker_rss,
                "workers": len(workers), "task_worker": rss_kib(self.processes["worker"].pid)}  # fmt: skip

    def spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", "tessera.cli", *args], env=self.env, cwd=ROOT,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.processes[name] = proc
        return proc

    def start_worker(self) -> None:
        self.spawn("worker", "worker", "--interval", "0.2")

    def tessera(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tessera.cli", *args], env=self.env, cwd=ROOT,
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def stop(self) -> None:
        for proc in self.processes.values():
            _signal_group(proc, signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                _signal_group(proc, signal.SIGKILL)
                proc.wait(timeout=10)


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.poll() is None:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)


def environment(db_url: str, smtp_port: int, stripe_base: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("TESSERA_", "DJANGO_"))}
    return {
        **keep, "DATABASE_URL": db_url, "SECRET_KEY": "soak-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1,localhost", "TESSERA_SECURE_COOKIES": "0", "TESSERA_HTTPS": "0",
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}", "TESSERA_ADMIN_EMAIL": "admin@soak.test",
        "STRIPE_API_BASE": stripe_base, "STRIPE_SECRET_KEY": STRIPE_KEY,
        "STRIPE_PUBLISHABLE_KEY": "pk_test_tessera_soak", "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "TESSERA_API_AUTH_FAILURE_RATE": UNLIMITED, "TESSERA_CHECKOUT_RATE": UNLIMITED,
        "TESSERA_CHECKOUT_RATE_PER_CLIENT": UNLIMITED, "TESSERA_SIGNIN_RATE_PER_EMAIL": UNLIMITED,
        "TESSERA_SIGNIN_RATE_PER_CLIENT": UNLIMITED,
        # a send that failed while PostgreSQL or the SMTP hop was down retries within seconds
        "TESSERA_EMAIL_RETRY_BASE_SECONDS": "2",
        # and one whose job died with a killed worker is sent again soon, not after 15 minutes
        "TESSERA_EMAIL_STALLED_SECONDS": "20",
        # a request cut off by a killed web worker leaves its key locked: retryable after this
        "TESSERA_IDEMPOTENCY_LOCK_SECONDS": "15",
        "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}",
    }  # fmt: skip


def _start_localstripe(stack: ExitStack, logs: Path) -> str:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.soak_localstripe", "--port", str(port)], cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}"}, start_new_session=True,
        stdout=(logs / "localstripe.log").open("ab"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    stack.callback(lambda: (_signal_group(proc, signal.SIGTERM), proc.wait(timeout=20)))
    wait_port(port, proc, "localstripe")
    return f"http://127.0.0.1:{port}"


def start_stack(resources: ExitStack, database: str, web_workers: int, logs: Path) -> Stack:
    """Everything the soak talks to, registered on ``resources`` to be stopped in reverse."""
    logs.mkdir(parents=True, exist_ok=True)
    db_url = create_database(database)
    resources.callback(drop_database, database)
    localstripe = _start_localstripe(resources, logs)
    proxy = FaultProxy(localstripe).start()
    resources.callback(proxy.stop)
    inbox, smtp_port = resources.enter_context(smtp_server())
    env = environment(db_url, smtp_port, proxy.url)
    stack = Stack(database, db_url, env, {}, inbox, proxy, localstripe, "", logs, web_workers)
    migrated = stack.tessera("migrate", "-v", "0")
    if migrated.returncode != 0:
        raise RuntimeError(f"migrate failed:\n{migrated.stdout}\n{migrated.stderr}")
    seeded = subprocess.run(
        [sys.executable, "-m", "bench.soak_seed"], env=env, cwd=ROOT, capture_output=True,
        text=True, timeout=300, check=False,
    )  # fmt: skip
    if seeded.returncode != 0:
        raise RuntimeError(f"seed failed:\n{seeded.stderr}")
    stack.seed = json.loads(seeded.stdout)
    port = free_port()
    stack.base = f"http://127.0.0.1:{port}"
    resources.callback(stack.stop)
    stack.spawn("web", "serve", "--host", "127.0.0.1", "--port", str(port),
                "--workers", str(web_workers))  # fmt: skip
    stack.start_worker()
    wait_http(f"{stack.base}/signin")
    return stack
