"""Where the SQLite database lives, worked out the same way before and after settings load.

The ``tessera`` command has to know the file before Django opens it, because opening a
SQLite file that is not there creates an empty one. So this needs only the environment.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path

import dj_database_url

DEFAULT_SQLITE_NAME = "tessera.sqlite3"


def default_sqlite_path(environ: Mapping[str, str]) -> Path:
    """The database used when DATABASE_URL is not set."""
    return Path(environ.get("TESSERA_SQLITE_PATH") or Path.cwd() / DEFAULT_SQLITE_NAME)


def sqlite_file(environ: Mapping[str, str]) -> Path | None:
    """The SQLite file the configuration names; None for a database server or in memory."""
    url = environ.get("DATABASE_URL", "")
    if not url:
        return default_sqlite_path(environ)
    if not url.startswith("sqlite:"):
        return None
    name = str(dj_database_url.parse(url).get("NAME") or "")
    return None if name in ("", ":memory:") else Path(name)


def never_migrated(path: Path) -> bool:
    """Whether an existing file plainly has no schema (an older version created such empty
    files, and every command but ``migrate`` then fails with "no such table")."""
    try:
        # mode=rw opens an existing file only; it never creates one.
        uri = f"{path.resolve().as_uri()}?mode=rw"
        with closing(sqlite3.connect(uri, uri=True, timeout=5)) as db:
            row = db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'django_migrations'"
            ).fetchone()
    except sqlite3.Error:
        return False  # locked, or not SQLite at all: Django's own error says more
    return row is None
