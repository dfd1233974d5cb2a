"""Tessera scaled out on one machine, for bench/scaleout.py and the scale-out race tests:
on one fresh PostgreSQL database, N ``tessera serve`` instances behind bench/balancer.py,
M ``tessera worker``s, localstripe and an SMTP server (tests/support/smtp.py) collecting the mail.

The database is made from TESSERA_SCALEOUT_DATABASE_URL (else DATABASE_URL, else
TESSERA_TEST_DATABASE_URL) as ``<TESSERA_SCALEOUT_DB_PREFIX><pid>`` and dropped afterwards.
Every process runs in its own process group on a free port and is stopped on the way out.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from tests.support.smtp import Inbox, free_port, smtp_server
from tests.support.stack import api_call, wait_port

ROOT = Path(__file__).resolve().parents[2]
STRIPE_KEY = "sk_test_tessera_scaleout"
UNLIMITED = "100000/m"  # the stack's own rate limits stay out of the way of the load


def admin_url() -> str:
    for name in ("TESSERA_SCALEOUT_DATABASE_URL", "DATABASE_URL", "TESSERA_TEST_DATABASE_URL"):
        url = os.environ.get(name, "")
        if url.startswith("postgres"):
            return url
    return "postgres://postgres@127.0.0.1:5432/postgres"


def database_url(name: str) -> str:
    return admin_url().rsplit("/", 1)[0] + f"/{name}"


def recreate_database(name: str) -> str:
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return database_url(name)


def drop_database(name: str) -> None:
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def clear_rq(url: str) -> None:
    """RQ's own keys only (``rq:*``): the Redis database may hold other things."""
    from redis import Redis

    with Redis.from_url(url) as client:
        for key in client.scan_iter("rq:*"):
            client.delete(key)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each process group, then SIGKILL what is left after 20 s."""
    for proc in procs:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    procs.clear()


@dataclass
class Stack:
    env: dict[str, str]
    db_url: str
    logs: Path
    inbox: Inbox
    seed: dict[str, Any] = field(default_factory=dict)
    port: int = 0  # the balancer's
    web: list[subprocess.Popen[bytes]] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    others: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def spawn(self, name: str, *argv: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        return subprocess.Popen(
            [sys.executable, *argv], env=self.env, cwd=ROOT, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, *argv], env=self.env, cwd=ROOT, capture_output=True, text=True,
            timeout=300, check=False,
        )  # fmt: skip

    def start_web(self, instances: int, workers: int, threads: int = 4) -> list[int]:
        """``instances`` of ``tessera serve`` and the balancer in front of them."""
        stop(self.web)
        ports = [free_port() for _ in range(instances)]
        for i, port in enumerate(ports):
            self.web.append(self.spawn(f"serve-{i}", "-m", "tessera.cli", "serve", "--host",
                                       "127.0.0.1", "--port", str(port), "--workers",
                                       str(workers), "--threads", str(threads)))  # fmt: skip
        self.port = free_port()
        self.web.append(self.spawn("balancer", "bench/balancer.py", "--port", str(self.port),
                                   "--upstream", ",".join(map(str, ports))))  # fmt: skip
        for port, proc in zip(ports, self.web, strict=False):
            wait_port(port, proc, "tessera serve")
            self.wait_http(port)
        wait_port(self.port, self.web[-1], "the balancer")
        return ports

    def wait_http(self, port: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/signin", timeout=5):
                    return
            except urllib.error.HTTPError:
                return  # it answers
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"port {port} never answered HTTP")

    def start_workers(self, n: int) -> None:
        for i in range(n):
            self.workers.append(self.spawn(f"worker-{i}", "-m", "tessera.cli", "worker"))

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """One request on a new connection through the balancer (so requests spread)."""
        base = f"http://127.0.0.1:{self.port}"
        return api_call(base, self.seed["api_key"], method, path, body, timeout=60)

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            return list(conn.execute(query, params).fetchall())  # type: ignore[arg-type]


def stack_env(db_url: str, smtp_port: int, stripe_url: str, tasks: str) -> dict[str, str]:
    drop = {"TESSERA_TESTING", "EMAIL_URL", "DJANGO_SETTINGS_MODULE"}  # pytest's, not the stack's
    return {
        **{k: v for k, v in os.environ.items() if k not in drop},
        "DATABASE_URL": db_url, "SECRET_KEY": "scaleout-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1,localhost", "TESSERA_HTTPS": "0",
        "TESSERA_SECURE_COOKIES": "0", "TESSERA_API_AUTH_FAILURE_RATE": UNLIMITED,
        "TESSERA_CHECKOUT_RATE": UNLIMITED, "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
        "STRIPE_API_BASE": stripe_url, "STRIPE_SECRET_KEY": STRIPE_KEY,
        "TESSERA_LOG_LEVEL": "WARNING", "TESSERA_TASKS_BACKEND": tasks,
        "TESSERA_RQ_URL": os.environ.get("TESSERA_SCALEOUT_RQ_URL", "redis://127.0.0.1:6379/7"),
        "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}",
    }  # fmt: skip


@contextmanager
def scaled_out(
    *, instances: int = 2, web_workers: int = 2, workers: int = 2, tasks: str = "database",
    clients: int = 16, logs: Path | None = None,
) -> Iterator[Stack]:  # fmt: skip
    """A migrated, seeded stack: ``instances`` x ``web_workers`` web processes behind the
    balancer and ``workers`` task workers, torn down (database too) on the way out."""
    name = f"{os.environ.get('TESSERA_SCALEOUT_DB_PREFIX', 'tessera_scaleout_')}{os.getpid()}"
    logs = logs or Path(tempfile.mkdtemp(prefix="tessera-scaleout-"))
    logs.mkdir(parents=True, exist_ok=True)
    with ExitStack() as cleanup:
        inbox, smtp_port = cleanup.enter_context(smtp_server())
        db_url = recreate_database(name)
        cleanup.callback(drop_database, name)
        stripe_port = free_port()
        stack = Stack(stack_env(db_url, smtp_port, f"http://127.0.0.1:{stripe_port}", tasks),
                      db_url, logs, inbox)  # fmt: skip
        if tasks == "rq":
            clear_rq(stack.env["TESSERA_RQ_URL"])
            cleanup.callback(clear_rq, stack.env["TESSERA_RQ_URL"])
        cleanup.callback(stop, stack.others)
        cleanup.callback(stop, stack.workers)
        cleanup.callback(stop, stack.web)
        stripe = stack.spawn("localstripe", "-m", "tessera.billing.localstripe_server", "--port",
                             str(stripe_port), "--state", str(logs / "localstripe.pickle"))  # fmt: skip
        stack.others.append(stripe)
        wait_port(stripe_port, stripe, "localstripe")
        for argv in (("-m", "tessera.cli", "migrate", "-v", "0"),
                     ("-m", "tests.support.scaleout_seed", "--clients", str(clients))):  # fmt: skip
            done = stack.run(*argv)
            if done.returncode != 0:
                raise RuntimeError(f"{argv} failed:\n{done.stdout}\n{done.stderr}")
        stack.seed = json.loads(done.stdout.strip().splitlines()[-1])
        stack.start_web(instances, web_workers)
        stack.start_workers(workers)
        yield stack


def fire(n: int, call: Callable[[int], tuple[int, Any]]) -> list[tuple[int, Any]]:
    """``n`` calls at once, one thread each, released together by a barrier."""
    barrier = threading.Barrier(n)
    results: list[tuple[int, Any]] = [(0, None)] * n

    def one(i: int) -> None:
        barrier.wait()
        try:
            results[i] = call(i)
        except OSError as exc:  # a dropped connection counts as its own outcome
            results[i] = (-1, {"code": type(exc).__name__})

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results
