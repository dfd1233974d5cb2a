"""`tessera backup` and `tessera restore`, run as the real command: a backup taken while
wallet orders commit restores into a fresh database with every order committed before it,
each order whole, and a ledger that verifies; and restore refuses what it must."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from tessera.backoffice.backup import (
    MAGIC,
    POSTGRESQL,
    SQLITE,
    BackupRefused,
    BackupRequest,
    RestoreRequest,
    back_up,
    restore,
)
from tests.support.backup_scenario import RoundTrip, round_trip, scratch_database, tessera

UNREACHABLE_POSTGRES = "postgres://nobody@127.0.0.1:9/nothing"
# The tests on SQLite files make their own databases, so they could run in either pass;
# they run in the SQLite pass only, as the PostgreSQL ones run in the PostgreSQL pass.
sqlite_pass = pytest.mark.skipif(
    connection.vendor != "sqlite", reason="on SQLite files; runs in the SQLite pass"
)


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database made by `tessera migrate`, for tests to copy."""
    path = tmp_path_factory.mktemp("template") / "tessera.sqlite3"
    done = tessera(path.parent, "migrate", "--verbosity", "0", DATABASE_URL=sqlite_url(path))
    assert done.returncode == 0, done.stderr
    return path


@pytest.fixture(scope="module")
def postgres_source() -> Iterator[str]:
    """A migrated PostgreSQL database of its own (the URL), dropped afterwards."""
    with scratch_database(connection.settings_dict, "source") as url:
        done = tessera(Path.cwd(), "migrate", "--verbosity", "0", DATABASE_URL=url)
        assert done.returncode == 0, done.stderr
        yield url


@pytest.fixture(scope="module")
def sqlite_live_backup(
    migrated_sqlite: Path, tmp_path_factory: pytest.TempPathFactory
) -> RoundTrip:
    workdir = tmp_path_factory.mktemp("live_sqlite")
    source = workdir / "source.sqlite3"
    shutil.copyfile(migrated_sqlite, source)
    restored = workdir / "restored.sqlite3"  # does not exist: restore creates it
    return round_trip(workdir, sqlite_url(source), sqlite_url(restored), workdir / "db.backup")


@pytest.fixture(scope="module")
def sqlite_backup(sqlite_live_backup: RoundTrip) -> Path:
    """A backup `tessera backup` wrote of a SQLite database."""
    return sqlite_live_backup.path


@pytest.fixture(scope="module")
def postgres_live_backup(
    postgres_source: str, tmp_path_factory: pytest.TempPathFactory
) -> RoundTrip:
    workdir = tmp_path_factory.mktemp("live_postgres")
    with scratch_database(connection.settings_dict, "restore") as restored:
        return round_trip(workdir, postgres_source, restored, workdir / "db.backup")


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("sqlite", marks=sqlite_pass),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ],
)
def live_backup(request: pytest.FixtureRequest) -> RoundTrip:
    """A backup taken while threads keep placing wallet orders, restored into a fresh
    database (once per engine for the tests below)."""
    made: RoundTrip = request.getfixturevalue(f"{request.param}_live_backup")
    return made


# --- a backup taken while orders commit ----------------------------------------------------


@pytest.mark.slow
def test_orders_kept_committing_while_the_backup_ran(live_backup: RoundTrip) -> None:
    assert live_backup.during > 0


@pytest.mark.slow
def test_every_order_committed_before_the_backup_is_restored(live_backup: RoundTrip) -> None:
    missing = live_backup.before - set(live_backup.restored["placed_orders"])
    assert missing == set()


@pytest.mark.slow
def test_every_restored_order_is_complete(live_backup: RoundTrip) -> None:
    assert live_backup.restored["incomplete_orders"] == []


@pytest.mark.slow
def test_no_payment_is_restored_without_its_order(live_backup: RoundTrip) -> None:
    assert live_backup.restored["payments_without_order"] == []


@pytest.mark.slow
def test_every_restored_wallet_equals_its_postings(live_backup: RoundTrip) -> None:
    assert live_backup.restored["wallets_off"] == []


@pytest.mark.slow
def test_the_restored_ledger_verifies(live_backup: RoundTrip) -> None:
    assert live_backup.restored["ledger_ok"] is True


@pytest.mark.slow
def test_restore_reports_the_ledger_check(live_backup: RoundTrip) -> None:
    assert "Ledger verify: OK" in live_backup.restore.stdout


@pytest.mark.slow
def test_backup_says_what_it_wrote(live_backup: RoundTrip) -> None:
    """The database, the engine, the file, its size and the time taken."""
    said = r"\((SQLite|PostgreSQL)\) to \S+db\.backup \([\d.]+ (bytes|kB|MB|GB)\) in [\d.]+ s"
    assert re.search(said, live_backup.backup.stdout)


# --- refusals, by the command -------------------------------------------------------------


@pytest.fixture(scope="module")
def refused_restore(
    sqlite_backup: Path, migrated_sqlite: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[subprocess.CompletedProcess[str], Path, str]:
    """A restore without --force into a database that has tables: what it answered, the
    target, and the target's digest before."""
    target = tmp_path_factory.mktemp("occupied") / "target.sqlite3"
    shutil.copyfile(migrated_sqlite, target)
    before = digest(target)
    done = tessera(target.parent, "restore", str(sqlite_backup), DATABASE_URL=sqlite_url(target))
    return done, target, before


@pytest.mark.slow
@sqlite_pass
def test_restore_refuses_a_database_that_has_tables(
    refused_restore: tuple[subprocess.CompletedProcess[str], Path, str],
) -> None:
    done, _, _ = refused_restore
    assert done.returncode == 2


@pytest.mark.slow
@sqlite_pass
def test_the_refusal_names_force(
    refused_restore: tuple[subprocess.CompletedProcess[str], Path, str],
) -> None:
    done, _, _ = refused_restore
    assert "add --force to replace this one" in done.stderr


@pytest.mark.slow
@sqlite_pass
def test_a_refused_restore_changes_nothing(
    refused_restore: tuple[subprocess.CompletedProcess[str], Path, str],
) -> None:
    _, target, before = refused_restore
    assert digest(target) == before


@pytest.mark.slow
@sqlite_pass
def test_restore_with_force_replaces_a_database_that_has_tables(
    sqlite_backup: Path, migrated_sqlite: Path, tmp_path: Path
) -> None:
    target = tmp_path / "target.sqlite3"
    shutil.copyfile(migrated_sqlite, target)
    done = tessera(
        tmp_path, "restore", "--force", str(sqlite_backup), DATABASE_URL=sqlite_url(target)
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
@sqlite_pass
def test_a_refused_restore_creates_no_database(tmp_path: Path) -> None:
    """restore may create the SQLite file, but not for a backup it refuses."""
    backup = tmp_path / "pg.backup"
    backup.write_bytes(MAGIC[POSTGRESQL] + bytes(64))
    target = tmp_path / "target.sqlite3"
    tessera(tmp_path, "restore", str(backup), DATABASE_URL=sqlite_url(target))
    assert not target.exists()


@pytest.mark.slow
@sqlite_pass
def test_backup_without_pg_dump_says_so(tmp_path: Path) -> None:
    """Checked before connecting; PATH holds no PostgreSQL programs here."""
    refused = tessera(tmp_path, "backup", str(tmp_path / "x"), DATABASE_URL=UNREACHABLE_POSTGRES,
                      PATH=str(tmp_path))  # fmt: skip
    assert "pg_dump is not installed" in refused.stderr


@pytest.fixture(scope="module")
def failing_pg_dump(
    postgres_source: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """A backup whose pg_dump fails (a stand-in on PATH): what it said, and its directory."""
    workdir = tmp_path_factory.mktemp("failing")
    tools = tmp_path_factory.mktemp("bin")
    fake = tools / "pg_dump"
    fake.write_text("#!/bin/sh\necho 'pg_dump: error: disk full' >&2\nexit 1\n")
    fake.chmod(0o755)
    done = tessera(workdir, "backup", str(workdir / "x"), DATABASE_URL=postgres_source,
                   PATH=f"{tools}:/usr/bin:/bin")  # fmt: skip
    return done, workdir


@pytest.mark.slow
@pytest.mark.postgres
def test_a_failing_pg_dump_is_reported_with_its_message(
    failing_pg_dump: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    done, _ = failing_pg_dump
    assert "pg_dump failed (exit status 1): pg_dump: error: disk full" in done.stderr


@pytest.mark.slow
@pytest.mark.postgres
def test_a_failed_backup_leaves_no_file(
    failing_pg_dump: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    _, workdir = failing_pg_dump
    assert list(workdir.iterdir()) == []


@pytest.fixture(scope="module")
def postgres_forced_restore(
    postgres_live_backup: RoundTrip, tmp_path_factory: pytest.TempPathFactory
) -> subprocess.CompletedProcess[str]:
    """A --force restore of a PostgreSQL backup into a database that has one table the
    backup does not hold."""
    backup = postgres_live_backup.path
    with scratch_database(connection.settings_dict, "forced") as url:
        with psycopg.connect(url, autocommit=True) as db:
            db.execute("CREATE TABLE reports_extra (id integer)")
        return tessera(tmp_path_factory.mktemp("forced"), "restore", "--force", str(backup),
                       DATABASE_URL=url)  # fmt: skip


@pytest.mark.slow
@pytest.mark.postgres
def test_restore_with_force_replaces_a_postgresql_database(
    postgres_forced_restore: subprocess.CompletedProcess[str],
) -> None:
    assert postgres_forced_restore.returncode == 0, postgres_forced_restore.stderr


@pytest.mark.slow
@pytest.mark.postgres
def test_restore_with_force_names_the_tables_it_left(
    postgres_forced_restore: subprocess.CompletedProcess[str],
) -> None:
    assert "Left as they were, not being in the backup: public.reports_extra." in (
        postgres_forced_restore.stdout
    )


# --- refusals, by the service (no database is opened) --------------------------------------


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """The engine this pass runs on. On SQLite the configured database becomes a file in
    tmp_path, so that nothing here could reach another one."""
    if connection.vendor == SQLITE:
        monkeypatch.setitem(connection.settings_dict, "NAME", str(tmp_path / "db.sqlite3"))
    return connection.vendor


def test_restore_of_a_missing_file_says_so(engine: str, tmp_path: Path) -> None:
    missing = tmp_path / "no-such.backup"
    with pytest.raises(BackupRefused, match=f"there is no backup at {re.escape(str(missing))}"):
        restore(RestoreRequest(path=missing))


def test_restore_refuses_a_backup_of_the_other_engine(engine: str, tmp_path: Path) -> None:
    other = POSTGRESQL if engine == SQLITE else SQLITE
    backup = tmp_path / "other.backup"
    backup.write_bytes(MAGIC[other] + bytes(64))
    with pytest.raises(BackupRefused, match="backup, and the configured database is"):
        restore(RestoreRequest(path=backup))


def test_restore_refuses_a_file_that_is_no_backup(engine: str, tmp_path: Path) -> None:
    backup = tmp_path / "notes.txt"
    backup.write_text("not a database")
    with pytest.raises(BackupRefused, match="is not a backup"):
        restore(RestoreRequest(path=backup))


def test_restore_refuses_a_backup_its_manifest_does_not_describe(
    engine: str, tmp_path: Path
) -> None:
    backup = tmp_path / "cut.backup"
    backup.write_bytes(MAGIC[engine] + bytes(64))  # shorter than the manifest says
    manifest = {"format": "tessera-backup", "engine": engine, "size": 4096, "sha256": "0" * 64}
    Path(f"{backup}.json").write_text(json.dumps(manifest))
    with pytest.raises(BackupRefused, match="is not the file its manifest describes"):
        restore(RestoreRequest(path=backup))


def test_backup_never_overwrites_a_file(engine: str, tmp_path: Path) -> None:
    existing = tmp_path / "kept.backup"
    existing.write_bytes(b"an earlier backup")
    with pytest.raises(BackupRefused, match="already exists"):
        back_up(BackupRequest(path=existing))
