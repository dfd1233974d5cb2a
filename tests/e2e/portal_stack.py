"""A real Tessera for the browser tests: ``tessera serve`` (gunicorn), ``tessera worker``,
localstripe and an SMTP server, on a database of their own (PostgreSQL in the PostgreSQL
pass, a SQLite file otherwise), and Debian's Chromium driven by Playwright.

The browser is never downloaded: without /usr/bin/chromium (``apt-get install chromium``)
or the playwright package the journeys skip and say so."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.smtp import Inbox, free_port, smtp_server
from tests.support.stack import api_call, wait_http
from tests.support.stripe import SECRET_KEY, WEBHOOK_SECRET

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("TESSERA_CHROMIUM", "/usr/bin/chromium")
OUTPUT = Path(os.environ.get("TESSERA_TEST_OUTPUT", ROOT / "test-output"))
PUBLISHABLE_KEY = "pk_test_tessera"


def browser_missing() -> str:
    """Why the browser journeys cannot run here, or '' when they can."""
    if not Path(CHROMIUM).exists():
        return f"Chromium not found at {CHROMIUM}: apt-get install chromium (CI installs it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (make install)"
    return ""


@dataclass
class Stack:
    base: str
    env: dict[str, str]
    seed: dict[str, Any]
    inbox: Inbox
    stripe: str
    logs: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return api_call(self.base, self.seed["api_key"], method, path, body)

    def emails_to(self, address: str, timeout: float = 20) -> list[Any]:
        """What the worker has sent to ``address`` so far, waiting for at least one."""
        deadline = time.monotonic() + timeout
        while True:
            found = [m for m in self.inbox.messages if address in str(m["To"])]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(0.2)


def _silent_wav(path: Path, seconds: float = 3.0, rate: int = 8000) -> None:
    """A short silent clip for the video activity: the player's clock runs as for a film."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(struct.pack("<h", 0) * int(seconds * rate))


def _media_server(folder: Path) -> tuple[ThreadingHTTPServer, str]:
    handler = partial(SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined,method-assign]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _database_url(tmp: Path) -> str:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        return f"sqlite:///{tmp / 'e2e.sqlite3'}"
    import psycopg

    name = f"tessera_e2e_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + f"/{name}"


def _drop_database(url: str) -> None:
    if not url.startswith("postgres"):
        return
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = os.environ["DATABASE_URL"]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise RuntimeError(f"{args} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


@pytest.fixture(scope="session")
def stack(localstripe_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    reason = browser_missing()
    if reason and os.environ.get("TESSERA_REQUIRE_BROWSER") == "1":
        pytest.fail(f"the browser tests are required here (TESSERA_REQUIRE_BROWSER=1): {reason}")
    if reason:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("portal-stack")
    _silent_wav(tmp / "welcome.wav")
    media, media_url = _media_server(tmp)
    database = _database_url(tmp)
    port = free_port()
    logs = OUTPUT / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with smtp_server() as (inbox, smtp_port):
        env = {
            **{k: v for k, v in os.environ.items() if k not in ("TESSERA_TESTING",)},
            "DATABASE_URL": database, "SECRET_KEY": "e2e-" + "x" * 40,
            "ALLOWED_HOSTS": "127.0.0.1,localhost", "TESSERA_SECURE_COOKIES": "0",
            "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}", "TESSERA_ADMIN_EMAIL": "admin@e2e.test",
            "STRIPE_API_BASE": localstripe_url, "STRIPE_SECRET_KEY": SECRET_KEY,
            "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "TESSERA_MEDIA_ORIGINS": media_url, "E2E_MEDIA_URL": media_url,
            "TESSERA_SIGNIN_RATE_PER_EMAIL": "50/h", "TESSERA_SIGNIN_RATE_PER_CLIENT": "200/h",
            # Every member here comes from 127.0.0.1: one client's checkout allowance is shared.
            "TESSERA_CHECKOUT_RATE": "1000/m", "TESSERA_CHECKOUT_RATE_PER_CLIENT": "1000/m",
            "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}",
        }  # fmt: skip
        _run(env, "-m", "tessera.cli", "migrate", "-v", "0")
        seed = json.loads(_run(env, "-m", "tests.e2e.portal_seed"))
        web_log = (logs / "serve.log").open("wb")
        worker_log = (logs / "worker.log").open("wb")
        processes = [
            subprocess.Popen([sys.executable, "-m", "tessera.cli", "serve", "--host", "127.0.0.1",
                              "--port", str(port), "--workers", "2"], env=env, cwd=ROOT,
                             stdout=web_log, stderr=subprocess.STDOUT),
            subprocess.Popen([sys.executable, "-m", "tessera.cli", "worker"], env=env, cwd=ROOT,
                             stdout=worker_log, stderr=subprocess.STDOUT),
        ]  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{base}/signin", timeout=40)
            yield Stack(base, env, seed, inbox, localstripe_url, logs, processes)
        finally:
            for p in processes:
                p.terminate()
            for p in processes:
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
            media.shutdown()
            _drop_database(database)


@pytest.fixture(scope="session")
def chromium(stack: Stack) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required", "--mute-audio"],
        )
        yield browser
        browser.close()


def clear_output(name: str) -> Path:
    folder = OUTPUT / "screenshots" / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    return folder
