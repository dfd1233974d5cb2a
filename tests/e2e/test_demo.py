"""The README's demo command, end to end: a real server, worker and the printed API key."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.smtp import free_port

pytestmark = pytest.mark.slow


def _request(url: str, key: str | None = None, body: dict | None = None) -> tuple[int, dict | str]:
    req = urllib.request.Request(url, method="POST" if body is not None else "GET")  # noqa: S310
    if key:
        req.add_header("Authorization", f"Bearer {key}")
    data = None
    if body is not None:
        req.add_header("Content-Type", "application/json")
        data = json.dumps(body).encode()
    try:
        # Longer than SQLite's 20 s busy timeout: on a loaded CI host a request may queue
        # behind the demo worker's write transaction, which is slow there, not broken.
        with urllib.request.urlopen(req, data=data, timeout=45) as resp:  # noqa: S310
            raw = resp.read().decode()
            status = resp.status
    except urllib.error.HTTPError as err:
        raw, status = err.read().decode(), err.code
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw


def _wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        lines.append(line)
        if needle in line:
            return lines
    raise AssertionError(f"demo never printed {needle!r}:\n{''.join(lines)}")


def test_demo_serves_api_admin_and_home_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": "", "TESSERA_SQLITE_PATH": str(tmp_path / "demo.sqlite3")}
    env.pop("TESSERA_TESTING", None)
    env.pop("EMAIL_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tessera.cli", "demo", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal would give it
    )
    try:
        lines = _wait_for_line(proc, "Press Ctrl-C", timeout=120)
        key = next(line.split("API key:")[1].strip() for line in lines if "API key:" in line)
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if _request(f"{base}/")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)

        status, home = _request(f"{base}/")
        assert status == 200
        assert "/api/v1/docs" in str(home)
        assert "/admin/" in str(home)
        assert _request(f"{base}/api/v1/docs")[0] == 200
        assert _request(f"{base}/admin/login/")[0] == 200

        status, created = _request(
            f"{base}/api/v1/contacts",
            key,
            {"first_name": "Curl", "last_name": "User", "email": "c@u.org"},
        )
        assert status == 201, created
        assert isinstance(created, dict)
        status, fetched = _request(f"{base}/api/v1/contacts/{created['id']}", key)
        assert status == 200
        assert fetched == {k: v for k, v in created.items() if k != "duplicates"}
        status, listed = _request(f"{base}/api/v1/contacts?email=c@u.org", key)
        assert status == 200
        assert isinstance(listed, dict)
        assert [c["id"] for c in listed["items"]] == [created["id"]]

        # Card payments go to the local Stripe emulator, and its signed webhooks come back.
        # The demo prints a ready test card (a PaymentMethod made on the emulator).
        pm = next(line.split("Card:")[1].split()[0] for line in lines if "Card:" in line)
        assert pm.startswith("pm_"), pm
        db = sqlite3.connect(tmp_path / "demo.sqlite3")
        member_id = db.execute(
            "select id from loyalty_member order by created_at limit 1"
        ).fetchone()[0]
        status, bought = _request(f"{base}/api/v1/members/{member_id}/credit-purchases", key,
                                  {"amount": 1000, "currency": "USD", "payment_method_id": pm})  # fmt: skip
        assert status == 201, bought
        assert isinstance(bought, dict)
        assert bought["points"] == 1000
        for _ in range(50):
            events = db.execute(
                "select count(*) from billing_stripeevent where processed_at is not null"
            ).fetchone()[0]
            if events:
                break
            time.sleep(0.2)
        assert events >= 1, "no verified webhook arrived from the emulator"
        db.close()

        # The worker runs too: the demo's welcome email gets sent.
        db = sqlite3.connect(tmp_path / "demo.sqlite3")
        for _ in range(100):
            sent = db.execute(
                "select count(*) from notifications_outboundemail "
                "where status='sent' and template='welcome'"
            ).fetchone()[0]
            if sent:
                break
            time.sleep(0.2)
        db.close()
        assert sent == 1
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does to the foreground group
        out, _ = proc.communicate(timeout=30)
    assert "Demo stopped." in out
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)  # nothing it started is left running


def test_demo_data_loads_once(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": "", "TESSERA_SQLITE_PATH": str(tmp_path / "d.sqlite3"),
           "TESSERA_DEMO": "1", "DJANGO_SETTINGS_MODULE": "tessera.settings"}  # fmt: skip
    code = (
        "import django; django.setup();"
        "from django.core.management import call_command; call_command('migrate', verbosity=0);"
        "from tessera.backoffice.demo import demo_data_loaded, load_demo_data;"
        "load_demo_data() if not demo_data_loaded() else None;"
        "from tessera.crm.models import Contact; print(Contact.objects.count())"
    )
    first = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    second = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    # The CRM's four contacts and the meetup's twenty guests, once.
    assert first.stdout.strip() == second.stdout.strip() == "24", first.stderr + second.stderr
