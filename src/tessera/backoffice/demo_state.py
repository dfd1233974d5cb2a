"""How a demo database is recognised, and what a running demo leaves beside it.

The mark is in the SQLite file's own header: SQLite reserves the 4-byte ``application_id``
field for telling which program a file belongs to, and Django never touches it. So the mark
travels with the file when it is copied or moved, cannot be left behind next to some other
database (as a marker file could), and is read from the first 72 bytes without opening a
connection, which could create files or wait on a lock.

Beside the database, ``<database>-demo.json`` holds what later commands need from the demo:
the raw demo API key (a restart prints the same key; the database itself stores it hashed
like any other) and the URL of the Stripe emulator, whose port changes at every start. It is
readable by its owner only (0600), and named like SQLite's own ``-wal``/``-shm`` files, so
deleting ``tessera.sqlite3*`` resets the demo whole.

Nothing here imports Django: the ``tessera`` command reads it before settings load.
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing
from pathlib import Path

DEMO_APPLICATION_ID = int.from_bytes(b"TsDm", "big")
_SQLITE_MAGIC = b"SQLite format 3\x00"
_APPLICATION_ID_AT = 68  # byte offset in the database header, big-endian

# The demo only ever talks to its local emulator; these are that emulator's, not secrets.
DEMO_STRIPE_SECRET_KEY = "sk_test_tessera_demo"  # noqa: S105
DEMO_STRIPE_PUBLISHABLE_KEY = "pk_test_tessera_demo"
DEMO_WEBHOOK_SECRET = "whsec_tessera_demo"  # noqa: S105

STATE_API_KEY = "api_key"
STATE_STRIPE_API_BASE = "stripe_api_base"


def is_demo_database(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            header = f.read(_APPLICATION_ID_AT + 4)
    except OSError:
        return False
    found = int.from_bytes(header[_APPLICATION_ID_AT:], "big")
    return header.startswith(_SQLITE_MAGIC) and found == DEMO_APPLICATION_ID


def mark_demo_database(path: Path) -> None:
    with closing(sqlite3.connect(path, timeout=20)) as db:
        db.execute(f"PRAGMA application_id = {DEMO_APPLICATION_ID}")
        # In WAL mode the new header sits in the -wal file until a checkpoint; copy it into
        # the database file now, where is_demo_database reads it.
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def state_file(database: Path | None) -> Path:
    """Beside the demo's SQLite file; in the working directory for a demo on a server."""
    if database is None:
        return Path.cwd() / "tessera-demo.json"
    return database.with_name(f"{database.name}-demo.json")


def read_state(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, str)}


def update_state(path: Path, **values: str) -> None:
    """Merge ``values`` into the state file, replaced whole so a reader never sees half."""
    data = {**read_state(path), **values}
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
    os.chmod(partial, 0o600)  # O_CREAT's mode applies to a new file only
    os.replace(partial, path)


def demo_environment(stripe_api_base: str) -> dict[str, str]:
    """What every process of a demo runs with: demo mode (the local secret key, console
    email) and the local Stripe emulator, never real money."""
    return {
        "TESSERA_DEMO": "1",
        "STRIPE_API_BASE": stripe_api_base,
        "STRIPE_SECRET_KEY": DEMO_STRIPE_SECRET_KEY,
        "STRIPE_PUBLISHABLE_KEY": DEMO_STRIPE_PUBLISHABLE_KEY,
        "STRIPE_WEBHOOK_SECRET": DEMO_WEBHOOK_SECRET,
    }
