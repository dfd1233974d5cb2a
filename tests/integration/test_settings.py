from __future__ import annotations

import os
import subprocess
import sys


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


def test_secret_key_is_required_outside_demo_and_debug() -> None:
    r = _import_settings()
    assert r.returncode != 0
    assert "SECRET_KEY must be set" in r.stderr
    assert _import_settings(TESSERA_DEMO="1").returncode == 0
    assert _import_settings(SECRET_KEY="s3cret").returncode == 0


def test_database_url_selects_postgres_and_default_is_sqlite() -> None:
    sqlite = _import_settings(SECRET_KEY="x", DATABASE_URL="")
    assert sqlite.stdout.strip() == "django.db.backends.sqlite3"
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
