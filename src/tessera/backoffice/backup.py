"""Backing up the configured database while the application runs, and restoring it.

A backup is a file in the engine's own format, so that the engine's tools read it without
Tessera: a SQLite database (written with SQLite's online backup API) or a ``pg_dump``
archive in custom format. Beside it, ``FILE.json`` (the manifest) records the engine, the
latest applied migration of each app, and the file's size and SHA-256; restore checks them
before it touches the target. A sidecar rather than one tar file: wrapping the dump would
cost a second full write on every backup and an extraction on every restore, and
``pg_restore --list`` or ``sqlite3`` could no longer open the backup as it is. Losing the
manifest loses no data: the engine is read from the file's first bytes, and the migration
history is inside the backup itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import time
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from django.db import DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from psycopg.conninfo import make_conninfo

from tessera.ledger.services import VerifyReport, verify

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
ENGINE_LABELS = {SQLITE: "SQLite", POSTGRESQL: "PostgreSQL"}
# The first bytes of each engine's file: a SQLite database, a pg_dump custom archive.
MAGIC = {SQLITE: b"SQLite format 3\x00", POSTGRESQL: b"PGDMP"}
MANIFEST_FORMAT = "tessera-backup"
MANIFEST_VERSION = 1
# libpq reads these from the environment: the password never appears in a command line,
# where every user of the machine could read it in the process list.
PG_SETTINGS_ENV = (("HOST", "PGHOST"), ("PORT", "PGPORT"), ("USER", "PGUSER"),
                   ("PASSWORD", "PGPASSWORD"), ("NAME", "PGDATABASE"))  # fmt: skip
PG_OPTIONS_ENV = (("sslmode", "PGSSLMODE"), ("sslrootcert", "PGSSLROOTCERT"),
                  ("sslcert", "PGSSLCERT"), ("sslkey", "PGSSLKEY"))  # fmt: skip


class BackupRefused(Exception):
    """Refused before anything was written; the message says why and what to do."""

    exit_code = 2


class BackupFailed(Exception):
    """The engine's tool is missing or failed, or the database could not be reached."""

    exit_code = 1


@dataclass(frozen=True)
class BackupRequest:
    path: Path


@dataclass(frozen=True)
class BackupResult:
    path: Path
    manifest_path: Path
    engine: str
    database: str
    size: int
    seconds: float
    migrations: dict[str, str]


@dataclass(frozen=True)
class RestoreRequest:
    path: Path
    force: bool = False


@dataclass(frozen=True)
class RestoreResult:
    path: Path
    engine: str
    database: str
    size: int
    seconds: float
    replaced: bool  # the target held tables, replaced under --force
    # PostgreSQL under --force: tables of the target the backup does not hold, which
    # pg_restore --clean leaves as they were (a newer release's, for instance).
    left_over: list[str]
    manifest_found: bool
    # None when the ledger cannot be read before the pending migrations are applied.
    ledger: VerifyReport | None
    # Migrations of the running code the restored database lacks (run `tessera migrate`),
    # and migrations recorded in the backup that this code does not know (a newer release
    # made it).
    unapplied: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def back_up(request: BackupRequest) -> BackupResult:
    """Write a consistent backup of the configured database to ``request.path``, and its
    manifest beside it, while the application keeps writing."""
    target = request.path
    if target.exists():
        raise BackupRefused(
            f"{target} already exists, and a backup never overwrites one: give a new name "
            "(with the date in it, for instance)."
        )
    if not target.parent.is_dir():
        raise BackupRefused(f"there is no directory {target.parent} to write {target.name} in.")
    engine = _configured_engine()
    database = _database_label(engine)
    started = time.monotonic()
    # Written beside the target and renamed at the end: a backup that fails or is
    # interrupted never leaves a file under the name a restore would trust.
    partial = target.with_name(target.name + ".partial")
    try:
        if engine == SQLITE:
            migrations = _dump_sqlite(_sqlite_path(), partial)
        else:
            migrations = _dump_postgresql(partial)
        size, digest = partial.stat().st_size, _sha256(partial)
        partial.replace(target)
    except sqlite3.Error as exc:
        raise BackupFailed(f"SQLite could not copy the database: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    seconds = time.monotonic() - started
    manifest = {
        "format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "engine": engine,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"), "database": database,
        "file": target.name, "size": size, "sha256": digest, "migrations": migrations,
    }  # fmt: skip
    manifest_path = _manifest_path(target)
    _write_json(manifest_path, manifest)
    return BackupResult(
        path=target, manifest_path=manifest_path, engine=engine, database=database,
        size=size, seconds=seconds, migrations=migrations,
    )  # fmt: skip


def restore(request: RestoreRequest) -> RestoreResult:
    """Restore a backup into the configured database, which must hold no tables unless
    ``force``; then check the ledger and the migrations against the running code."""
    path = request.path
    if not path.is_file():
        raise BackupRefused(f"there is no backup at {path}: give the file `tessera backup` wrote.")
    manifest = _read_manifest(path)
    engine = _engine_of_backup(path, manifest)
    configured = _configured_engine()
    database = _database_label(configured)
    if engine != configured:
        raise BackupRefused(
            f"{path} is a {ENGINE_LABELS[engine]} backup, and the configured database is "
            f"{ENGINE_LABELS[configured]} ({database}): restore it into a "
            f"{ENGINE_LABELS[engine]} database (set DATABASE_URL). Nothing was changed."
        )
    held = _sqlite_tables(_sqlite_path()) if engine == SQLITE else _postgresql_tables()
    if held and not request.force:
        raise BackupRefused(
            f"{database} is not empty ({len(held)} tables), and restore replaces a database "
            "only with --force: restore into an empty database (a new file, or one made with "
            "createdb), or add --force to replace this one. Nothing was changed."
        )
    started = time.monotonic()
    left_over: list[str] = []
    if engine == SQLITE:
        try:
            _load_sqlite(path, _sqlite_path())
        except sqlite3.Error as exc:
            raise BackupFailed(f"SQLite could not restore into the database: {exc}") from exc
    else:
        left_over = sorted(set(held) - _tables_in_archive(path))
        _load_postgresql(path)
    seconds = time.monotonic() - started
    # A connection opened before the restore may keep plans of the tables it replaced.
    connection.close()
    unapplied, unknown = _migration_state()
    return RestoreResult(
        path=path,
        engine=engine,
        database=database,
        size=path.stat().st_size,
        seconds=seconds,
        replaced=bool(held),
        left_over=left_over,
        manifest_found=manifest is not None,
        ledger=_verify_ledger(pending=bool(unapplied)),
        unapplied=unapplied,
        unknown=unknown,
    )


def _verify_ledger(*, pending: bool) -> VerifyReport | None:
    try:
        return verify()
    except DatabaseError:
        if not pending:
            raise
        # A backup older than the code may lack a column the ledger's models now read.
        connection.close()
        return None


# --- SQLite ---------------------------------------------------------------------------------


def _dump_sqlite(source: Path, dest: Path) -> dict[str, str]:
    # mode=rw opens the existing file only: a backup never creates an empty database.
    uri = f"{source.resolve().as_uri()}?mode=rw"
    with (
        closing(sqlite3.connect(uri, uri=True, timeout=20)) as src,
        closing(sqlite3.connect(dest)) as dst,
    ):
        # In one step (pages=-1) the copy reads a single snapshot under one read
        # transaction, which in WAL mode holds no writer back. Copied in several steps,
        # SQLite restarts the copy whenever another connection writes between two of them,
        # and on a busy database it would never finish.
        src.backup(dst)
        # The copy inherits WAL mode; a backup is one self-contained file instead.
        dst.execute("PRAGMA journal_mode=DELETE")
        return _latest_migrations(
            dst.execute("SELECT app, name FROM django_migrations ORDER BY id")
        )


def _load_sqlite(backup: Path, target: Path) -> None:
    connection.close()  # ours must hold no transaction on the file while it is replaced
    uri = f"{backup.resolve().as_uri()}?mode=ro"
    with (
        closing(sqlite3.connect(uri, uri=True)) as src,
        closing(sqlite3.connect(target, timeout=20)) as dst,
    ):
        # The backup API writes the whole target in one transaction: a failure leaves it
        # as it was, and the target's tables not in the backup go with the rest.
        src.backup(dst)


def _sqlite_path() -> Path:
    name = str(connection.settings_dict["NAME"] or "")
    if name in ("", ":memory:") or name.startswith("file:"):
        raise BackupRefused(
            "the configured SQLite database is in memory, so there is nothing to back up or "
            "restore into: set DATABASE_URL to a database file."
        )
    return Path(name)


def _sqlite_tables(path: Path) -> list[str]:
    if not path.exists() or path.stat().st_size == 0:
        return []
    uri = f"{path.resolve().as_uri()}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, timeout=20)) as db:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return [str(name) for (name,) in rows]


# --- PostgreSQL -----------------------------------------------------------------------------


def _dump_postgresql(dest: Path) -> dict[str, str]:
    pg_dump = _tool("pg_dump")
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            # pg_dump dumps the snapshot of this transaction (--snapshot), and the manifest's
            # migrations are read in it too: they describe the dump even if `tessera migrate`
            # commits meanwhile. MVCC keeps the snapshot while orders go on committing.
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot = cursor.fetchone()[0]
            cursor.execute("SELECT app, name FROM django_migrations ORDER BY id")
            migrations = _latest_migrations(cursor.fetchall())
            _run([pg_dump, "--format=custom", f"--snapshot={snapshot}", f"--file={dest}"])
    except DatabaseError as exc:
        raise BackupFailed(f"could not read the database: {_first_line(exc)}") from exc
    return migrations


def _load_postgresql(backup: Path) -> None:
    pg_restore = _tool("pg_restore")
    connection.close()  # ours must hold no lock on the tables being replaced
    name = str(connection.settings_dict["NAME"])
    # --single-transaction (which implies --exit-on-error, given as well for the reader):
    # a restore that fails half-way is rolled back, and the target stays as it was.
    _run([
        pg_restore, "--no-owner", "--clean", "--if-exists", "--exit-on-error",
        "--single-transaction", f"--dbname={make_conninfo(dbname=name)}", str(backup),
    ])  # fmt: skip


def _postgresql_tables() -> list[str]:
    """The target's tables, as schema.name, outside PostgreSQL's own schemas."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT n.nspname || '.' || c.relname FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' "
                "AND n.nspname NOT LIKE 'pg\\_%'"
            )
            return [str(name) for (name,) in cursor.fetchall()]
    except DatabaseError as exc:
        raise BackupFailed(f"could not read the database: {_first_line(exc)}") from exc


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupFailed(
            f"{name} is not installed (or not on PATH): install PostgreSQL's client programs, "
            "of the server's major version or newer (Debian and Ubuntu: postgresql-client)."
        )
    return found


def _tables_in_archive(backup: Path) -> set[str]:
    """The tables a pg_dump archive holds, as schema.name, from its table of contents
    (lines such as ``215; 1259 16390 TABLE public auth_group postgres``)."""
    listing = _run([_tool("pg_restore"), "--list", str(backup)])
    words = (line.split() for line in listing.splitlines() if not line.startswith(";"))
    return {f"{w[4]}.{w[5]}" for w in words if len(w) >= 6 and w[3] == "TABLE"}


def _run(argv: list[str]) -> str:
    done = subprocess.run(  # noqa: S603 - a fixed program; no shell, arguments are ours
        argv, env=_pg_environment(), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        tool = Path(argv[0]).name
        said = " ".join(done.stderr.strip().splitlines()[-3:]) or "no message"
        raise BackupFailed(f"{tool} failed (exit status {done.returncode}): {said}")
    return done.stdout


def _pg_environment() -> dict[str, str]:
    """The process environment plus the connection the settings name, as libpq variables
    (what the settings leave out, libpq takes from the environment, as psycopg does)."""
    settings_dict = connection.settings_dict
    env = dict(os.environ)
    for key, var in PG_SETTINGS_ENV:
        if settings_dict.get(key):
            env[var] = str(settings_dict[key])
    options = settings_dict.get("OPTIONS") or {}
    for key, var in PG_OPTIONS_ENV:
        if options.get(key):
            env[var] = str(options[key])
    return env


# --- both -----------------------------------------------------------------------------------


def _configured_engine() -> str:
    if connection.vendor not in ENGINE_LABELS:
        raise BackupRefused(f"backups are made of SQLite and PostgreSQL, not {connection.vendor}.")
    return str(connection.vendor)


def _database_label(engine: str) -> str:
    if engine == SQLITE:
        return str(_sqlite_path())
    s = connection.settings_dict
    return f"database {s['NAME']} on {s.get('HOST') or 'the local socket'}"


def _engine_of_backup(path: Path, manifest: dict[str, Any] | None) -> str:
    with path.open("rb") as file:
        head = file.read(16)
    found = next((engine for engine, magic in MAGIC.items() if head.startswith(magic)), None)
    if found is None:
        raise BackupRefused(
            f"{path} is not a backup: it is neither a SQLite database nor a pg_dump archive "
            "in custom format."
        )
    if manifest is None:
        return found
    if manifest.get("engine") != found:
        raise BackupRefused(
            f"{path} is a {ENGINE_LABELS[found]} file, but its manifest says "
            f"{manifest.get('engine')!r}: the two belong to different backups."
        )
    if manifest.get("size") != path.stat().st_size or manifest.get("sha256") != _sha256(path):
        raise BackupRefused(
            f"{path} is not the file its manifest describes (truncated or changed since the "
            "backup); nothing was restored."
        )
    return found


def _read_manifest(path: Path) -> dict[str, Any] | None:
    manifest_path = _manifest_path(path)
    if not manifest_path.exists():
        return None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupRefused(f"the manifest {manifest_path} cannot be read: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise BackupRefused(f"{manifest_path} is not the manifest of a Tessera backup.")
    return manifest


def _migration_state() -> tuple[list[str], list[str]]:
    """What the running code would apply to the restored database, and what the
    database records that the code does not have."""
    executor = MigrationExecutor(connection)
    graph = executor.loader.graph
    plan = executor.migration_plan(graph.leaf_nodes())
    unapplied = [f"{m.app_label}.{m.name}" for m, backwards in plan if not backwards]
    applied = executor.loader.applied_migrations or {}
    unknown = sorted(f"{app}.{name}" for app, name in applied if (app, name) not in graph.nodes)
    return unapplied, unknown


def _latest_migrations(rows: Any) -> dict[str, str]:
    """The last migration applied in each app (rows of app, name in the order applied)."""
    return {str(app): str(name) for app, name in rows}


def _manifest_path(backup: Path) -> Path:
    return backup.with_name(backup.name + ".json")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    partial.replace(path)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
