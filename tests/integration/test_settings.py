from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.db import connection


def _import_settings(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TESSERA_", "SECRET_KEY"))}
    clean.update(env)
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import tessera.settings as s; print(s.DATABASES['default']['ENGINE'])",
        ],
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_without_a_secret_key_the_settings_refuse_to_load() -> None:
    r = _import_settings()
    assert r.returncode != 0
    assert "SECRET_KEY must be set" in r.stderr


def test_the_demo_needs_no_secret_key() -> None:
    assert _import_settings(TESSERA_DEMO="1").returncode == 0


def test_with_a_secret_key_the_settings_load() -> None:
    assert _import_settings(SECRET_KEY="s3cret").returncode == 0


def test_without_a_database_url_the_database_is_sqlite() -> None:
    sqlite = _import_settings(SECRET_KEY="x", DATABASE_URL="")
    assert sqlite.stdout.strip() == "django.db.backends.sqlite3"


def test_a_postgres_database_url_selects_postgres() -> None:
    pg = _import_settings(SECRET_KEY="x", DATABASE_URL="postgres://u@127.0.0.1:5432/db")
    assert pg.stdout.strip() == "django.db.backends.postgresql"


def test_sqlite_runs_in_wal_with_immediate_transactions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = (
        "import django; django.setup();"
        "from django.db import connection;"
        "c = connection.cursor(); c.execute('PRAGMA journal_mode'); print(c.fetchone()[0]);"
        "print(connection.settings_dict['OPTIONS']['transaction_mode'])"
    )
    env = {
        **os.environ,
        "SECRET_KEY": "x",
        "DATABASE_URL": "",
        "TESSERA_SQLITE_PATH": str(tmp_path / "t.sqlite3"),
        "DJANGO_SETTINGS_MODULE": "tessera.settings",
    }
    r = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert r.stdout.split() == ["wal", "IMMEDIATE"], r.stderr


def _prepared_after_repeats(**env: str) -> subprocess.CompletedProcess[str]:
    """Run one query ten times on a PostgreSQL connection, then list what the server holds
    prepared for that connection."""
    code = (
        "import django; django.setup();"
        "from django.db import connection;"
        "c = connection.cursor();"
        "[c.execute('SELECT count(*) FROM pg_class WHERE relname = %s', ['pg_type'])"
        " for _ in range(10)];"
        "c.execute('SELECT count(*) FROM pg_prepared_statements');"
        "print(c.fetchone()[0])"
    )
    env = {**os.environ, "SECRET_KEY": "x", "DJANGO_SETTINGS_MODULE": "tessera.settings", **env}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.postgres
def test_postgres_prepares_repeated_statements_unless_switched_off() -> None:
    url = connection.settings_dict
    database_url = (
        f"postgres://{url['USER']}@{url['HOST'] or '127.0.0.1'}:{url['PORT'] or 5432}/{url['NAME']}"
    )
    on = _prepared_after_repeats(DATABASE_URL=database_url)
    assert on.returncode == 0, on.stderr
    assert int(on.stdout) >= 1
    off = _prepared_after_repeats(DATABASE_URL=database_url, DATABASE_PREPARED_STATEMENTS="0")
    assert off.returncode == 0, off.stderr
    assert int(off.stdout) == 0
