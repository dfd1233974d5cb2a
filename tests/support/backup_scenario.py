"""What the backup tests run: the real `tessera` command and the order load, each in its
own process with a clean environment, against databases the tests create."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parents[2]
# Enough to run a program; none of Tessera's configuration. PYTHONPATH stays so a checkout
# run from elsewhere still imports its own code.
KEPT = ("PATH", "HOME", "LANG", "TMPDIR", "PYTHONPATH")
CONSOLE_SCRIPT = Path(sys.executable).with_name("tessera")
ORDERS_BEFORE_BACKUP = 20


def clean_env(**extra: str) -> dict[str, str]:
    base = {k: os.environ[k] for k in KEPT if k in os.environ}
    return {**base, "SECRET_KEY": "backup-tests-only", "EMAIL_URL": "console://", **extra}


def tessera(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    argv = (
        [str(CONSOLE_SCRIPT)] if CONSOLE_SCRIPT.exists() else [sys.executable, "-m", "tessera.cli"]
    )
    return subprocess.run(
        [*argv, *args], cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=120
    )


def check(database_url: str) -> dict[str, Any]:
    """What tests/support/backup_check.py reports of the database."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.backup_check"], cwd=REPO,
        env=clean_env(DATABASE_URL=database_url), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@dataclass(frozen=True)
class RoundTrip:
    """A backup taken while orders committed, and its restore into a fresh database."""

    path: Path  # the backup
    before: set[str]  # orders committed before the backup started
    during: int  # orders committed while the backup command ran
    backup: subprocess.CompletedProcess[str]
    restore: subprocess.CompletedProcess[str]
    restored: dict[str, Any]  # what backup_check reports of the restored database


def round_trip(workdir: Path, source_url: str, restored_url: str, backup: Path) -> RoundTrip:
    log, stop = workdir / "orders.log", workdir / "stop"
    load = subprocess.Popen(
        [sys.executable, "-m", "tests.support.backup_load", str(log), str(stop)], cwd=REPO,
        env=clean_env(DATABASE_URL=source_url), stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        _wait_for_orders(log, load)
        before = committed(log)
        made = tessera(workdir, "backup", str(backup), DATABASE_URL=source_url)
        during = len(committed(log)) - len(before)
    finally:
        stop.touch()
        _, errors = load.communicate(timeout=60)
    assert load.returncode == 0, errors
    assert made.returncode == 0, made.stderr
    restored = tessera(workdir, "restore", str(backup), DATABASE_URL=restored_url)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    return RoundTrip(backup, before, during, made, restored, check(restored_url))


def committed(log: Path) -> set[str]:
    """The order ids in the log; a line still being written (no newline yet) is left out."""
    text = log.read_text(encoding="utf-8") if log.exists() else ""
    return set(text[: text.rfind("\n") + 1].split())


def _wait_for_orders(log: Path, load: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while len(committed(log)) < ORDERS_BEFORE_BACKUP:
        assert load.poll() is None, "the order load stopped before the backup"
        assert time.monotonic() < deadline, "the order load placed too few orders in 60 s"
        time.sleep(0.05)


# --- PostgreSQL databases ------------------------------------------------------------------


def postgres_url(settings_dict: dict[str, Any], name: str) -> str:
    """A DATABASE_URL for database ``name`` on the server of ``settings_dict``."""
    user = settings_dict.get("USER") or "postgres"
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{name}"


@contextmanager
def scratch_database(settings_dict: dict[str, Any], purpose: str) -> Iterator[str]:
    """A new empty database named ``h3_<purpose>_<random>``, dropped afterwards; yields
    its URL."""
    name = f"h3_{purpose}_{uuid.uuid4().hex[:10]}"
    admin = postgres_url(settings_dict, "postgres")
    with psycopg.connect(admin, autocommit=True) as db:
        db.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield postgres_url(settings_dict, name)
    finally:
        with psycopg.connect(admin, autocommit=True) as db:
            db.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
