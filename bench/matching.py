"""Benchmark: duplicate matching of contacts (lookup latency, quality, import speed).

    .venv/bin/python bench/matching.py --db sqlite|postgres --n 100000 \
        [--queries 2000] [--import-rows 20000] [--seed 1] [--profile DIR] [--show-errors 5]

Builds a fresh database of its own (a SQLite file under /tmp, or the PostgreSQL database
``tessera_bench`` on the server of ``TESSERA_TEST_DATABASE_URL``), loads N synthetic
contacts with their match keys (bypassing the duplicate checks), then measures:

- lookups: ``engine.find_matches("contact", record)`` for a stream of incoming records,
  80% damaged copies of existing contacts and 20% new people;
- quality of the standard contact rule on that stream: precision, recall on the records
  the rule can match to their source at all ("eligible"), F1;
- CSV import with matching on (``importer.import_contacts``);
- baselines measured in the same run: an indexed lookup by email, and pgbench -S.

Targets (issue): p95 <= 5 ms on PostgreSQL, <= 10 ms on SQLite at 1M contacts; import
>= 5,000 rows/s on PostgreSQL; precision >= 0.995, recall >= 0.98 on eligible records.
Everything is deterministic given --seed; nothing is written outside /tmp.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.corruption import RealisticDamager
from bench.matching_lookups import (
    Latency,
    finish_profile,
    maybe_profile,
    run_lookups,
    use_probabilistic_mode,
    use_rules_mode,
)
from bench.matching_quality import Incoming, compute_truth, measure
from bench.matching_report import report, triple
from bench.people import Damager, PeopleFactory, Person

AnyDamager = Damager | RealisticDamager

# Wide enough for the table when the output goes to a file (nohup) rather than a terminal.
console = Console(width=None if sys.stdout.isatty() else 120)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG_URL = "postgres://postgres@127.0.0.1:5432/test"
BENCH_DB = "tessera_bench"
PGBENCH_DB = "tessera_pgbench"
LOAD_BATCH = 5000
WARMUP = 100
FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "company",
    "title",
    "street",
    "city",
    "postal_code",
    "country",
)


# --- configuration and database ------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    db: str
    n: int
    queries: int
    import_rows: int
    seed: int
    profile: Path | None
    show_errors: int
    keep: bool
    damage: str = "realistic"
    match_probability: float = 0.99


def parse_args(argv: Sequence[str] | None = None) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), required=True)
    parser.add_argument("--n", type=int, default=100_000, help="contacts in the database")
    parser.add_argument("--queries", type=int, default=2000, help="incoming records looked up")
    parser.add_argument("--import-rows", type=int, default=20_000, help="rows in the CSV import")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", type=Path, help="write cProfile stats of lookups/import here")
    parser.add_argument(
        "--show-errors", type=int, default=0, help="print this many missed/false matches"
    )
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    parser.add_argument(
        "--damage", choices=("realistic", "light"), default="realistic",
        help="realistic: 1-3 damaged fields per copy and look-alikes; light: the first version's",
    )  # fmt: skip
    parser.add_argument(
        "--match-probability", type=float, default=0.99,
        help="the probabilistic rule's threshold",
    )  # fmt: skip
    a = parser.parse_args(argv)
    return Config(
        a.db, a.n, a.queries, a.import_rows, a.seed, a.profile, a.show_errors, a.keep, a.damage,
        a.match_probability,
    )  # fmt: skip


def pg_params(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "user": unquote(parts.username or "postgres"),
        "password": unquote(parts.password) if parts.password else None,
    }


def pg_url(params: dict[str, Any], dbname: str) -> str:
    auth = params["user"] + (f":{params['password']}" if params["password"] else "")
    return f"postgres://{auth}@{params['host']}:{params['port']}/{dbname}"


def recreate_pg_database(params: dict[str, Any], dbname: str, *, drop_only: bool = False) -> None:
    import psycopg

    with psycopg.connect(
        host=params["host"],
        port=params["port"],
        user=params["user"],
        password=params["password"],
        dbname="postgres",
        autocommit=True,
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{dbname}"')


def prepare_database(cfg: Config, workdir: Path) -> str:
    """Point Django at a fresh, empty database; returns a description of it."""
    if cfg.db == "sqlite":
        path = workdir / "bench.sqlite3"
        os.environ["DATABASE_URL"] = f"sqlite:///{path}"
        where = str(path)
    else:
        params = pg_params(os.environ.get("TESSERA_TEST_DATABASE_URL", DEFAULT_PG_URL))
        recreate_pg_database(params, BENCH_DB)
        os.environ["DATABASE_URL"] = pg_url(params, BENCH_DB)
        where = f"{params['host']}:{params['port']}/{BENCH_DB}"
    os.environ.setdefault("SECRET_KEY", "bench-only-not-secret")
    os.environ["TESSERA_TESTING"] = "1"
    os.environ["DJANGO_SETTINGS_MODULE"] = "tessera.settings"
    sys.path.insert(0, str(ROOT / "src"))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return where


def analyze() -> None:
    """Statistics and, on PostgreSQL, the visibility map: after a bulk load nothing has
    vacuumed the key table yet, so its index-only scans would visit the heap for every row
    (a running database is vacuumed by autovacuum; this is that steady state)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")


# --- loading -------------------------------------------------------------------------------


@contextmanager
def progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """Yields ``advance(n)``: a rich progress bar on a terminal, else (output going to a
    file, under nohup) a line at every tenth of the way."""
    if console.is_terminal:
        columns = (
            TextColumn("{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=console) as bar:
            task = bar.add_task(description, total=total)
            yield lambda k: bar.advance(task, k)
        return
    done, start, step = 0, time.perf_counter(), max(1, total // 10)

    def advance(k: int) -> None:
        nonlocal done
        before, done = done, done + k
        if done // step > before // step or done == total:
            elapsed = time.perf_counter() - start
            console.print(f"{description}: {done:,}/{total:,} ({elapsed:.0f} s)")

    yield advance


def deterministic_id(prefix: str, index: int, rng: random.Random) -> str:
    from ulid import ULID

    base_ms = 1_700_000_000_000  # ids sort by creation order, like the real ones
    return f"{prefix}_{ULID.from_bytes((base_ms + index).to_bytes(6, 'big') + rng.randbytes(10))}"


@dataclass
class Population:
    kept: dict[int, Person]  # the people the stream, import and baseline need, by index
    load_seconds: float
    insert_seconds: float
    keys: int


def load_population(cfg: Config, factory: PeopleFactory, needed: set[int]) -> Population:
    """N contacts and their match keys, straight into the tables (no duplicate checks):
    ``bulk_create`` for the contacts, the engine's bulk key writer for their keys."""
    from django.db import transaction

    from tessera.crm.matching import engine
    from tessera.crm.models import Contact

    id_rng = random.Random(cfg.seed + 7)
    epoch = datetime(2025, 1, 1, tzinfo=UTC)
    kept: dict[int, Person] = {}
    insert_seconds = 0.0
    total_keys = 0
    start = time.perf_counter()
    with progress("loading contacts", cfg.n) as advance:
        for lo in range(0, cfg.n, LOAD_BATCH):
            contacts: list[Contact] = []
            keys: dict[str, set[str]] = {}
            for index in range(lo, min(cfg.n, lo + LOAD_BATCH)):
                person = factory.person()
                person.id = deterministic_id("con", index, id_rng)
                active = epoch - timedelta(seconds=id_rng.randrange(3 * 365 * 86400))
                contact = Contact(id=person.id, last_activity_at=active, **person.values)
                contacts.append(contact)
                keys[contact.pk] = engine.keys_for("contact", engine.record_values(contact))
                if index in needed:
                    kept[index] = person
            t0 = time.perf_counter()
            with transaction.atomic():
                Contact.objects.bulk_create(contacts)
                total_keys += engine.store_keys("contact", keys)
            insert_seconds += time.perf_counter() - t0
            advance(len(contacts))
    load_seconds = time.perf_counter() - start
    analyze()
    return Population(kept, load_seconds, insert_seconds, total_keys)


# --- the incoming stream -------------------------------------------------------------------


def damaged_copy(person: Person, damager: AnyDamager) -> Incoming:
    record, damage = damager.damage(person)
    return Incoming(record, person.id, damage)


def new_person(factory: PeopleFactory) -> Incoming:
    fresh = factory.person()
    return Incoming({k: v for k, v in fresh.values.items() if v}, None, ["new"])


def lookalike(person: Person, damager: RealisticDamager) -> Incoming:
    record, damage = damager.hard_negative(person)
    return Incoming(record, None, damage, lookalike=person.id)


def make_stream(
    count: int, sources: Iterator[int], kept: dict[int, Person], damager: AnyDamager
) -> list[Incoming]:
    """Light: ~80% damaged copies of stored contacts, ~20% people not in the database.
    Realistic: ~70% copies, ~15% new people, ~15% look-alikes of stored contacts (a
    relative at the same address, a namesake), whom no rule may match to them."""
    out = []
    for _ in range(count):
        roll = damager.rng.random()
        if isinstance(damager, RealisticDamager) and roll >= 0.85:
            out.append(lookalike(kept[next(sources)], damager))
        elif roll < (0.7 if isinstance(damager, RealisticDamager) else 0.8):
            out.append(damaged_copy(kept[next(sources)], damager))
        else:
            out.append(new_person(damager.factory))
    return out


# --- import and baselines ----------------------------------------------------------------


def people_rows(items: list[Incoming]) -> Iterator[list[str]]:
    for item in items:
        yield [item.record.get(f, "") for f in FIELDS]


@dataclass
class ImportRun:
    rows: int
    seconds: float
    summary: dict[str, int]
    python_cpu_s: float  # this process, every thread
    database_cpu_s: float | None  # the PostgreSQL backend serving the import

    def cpu_us_per_row(self) -> tuple[float, float | None]:
        per = 1e6 / self.rows if self.rows else 0.0
        db = None if self.database_cpu_s is None else self.database_cpu_s * per
        return self.python_cpu_s * per, db

    @property
    def per_s(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def run_import(cfg: Config, workdir: Path, items: list[Incoming]) -> ImportRun:
    from tessera.crm.importer import import_contacts

    path = workdir / "import.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(FIELDS)
        writer.writerows(people_rows(items))
    backend = database_backend_pid()
    prof = maybe_profile(cfg.profile, "import")
    with progress("import (CSV)", len(items)) as advance:
        db0, py0, t0 = backend_cpu_s(backend), time.process_time(), time.perf_counter()
        summary = import_contacts(path, progress=advance)
        seconds = time.perf_counter() - t0
        py1, db1 = time.process_time(), backend_cpu_s(backend)
    finish_profile(cfg.profile, prof, "import")
    counts = {
        "created": summary.created,
        "linked": summary.linked,
        "flagged": summary.flagged,
        "rejected": summary.rejected,
    }
    db_cpu = None if db0 is None or db1 is None else db1 - db0
    return ImportRun(len(items), seconds, counts, py1 - py0, db_cpu)


def database_backend_pid() -> int | None:
    """The PostgreSQL backend of Django's connection (None on SQLite)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return int(cursor.fetchone()[0])


def backend_cpu_s(pid: int | None) -> float | None:
    """CPU seconds (user + system) the process has used, from /proc: the server must run
    on this host, as it does for this benchmark."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_baseline(emails: list[str]) -> Latency:
    """The plain indexed lookup: a contact by email, as GET /contacts?email= does it (the
    only index on email is Lower(email), so a bare ``email=`` filter would scan)."""
    from django.db.models.functions import Lower

    from tessera.crm.models import Contact

    def lookup(email: str) -> Contact | None:
        return (
            Contact.objects.annotate(email_lower=Lower("email")).filter(email_lower=email).first()
        )

    for email in emails[:WARMUP]:
        lookup(email)
    latency = Latency()
    for email in emails:
        t0 = time.perf_counter()
        lookup(email)
        latency.seconds.append(time.perf_counter() - t0)
    return latency


@dataclass
class PgBench:
    tps: float | None = None
    latency_ms: float | None = None
    note: str = ""


def run_pgbench() -> PgBench:
    exe = shutil.which("pgbench")
    if exe is None:
        return PgBench(note="pgbench not installed; skipped")
    params = pg_params(os.environ.get("TESSERA_TEST_DATABASE_URL", DEFAULT_PG_URL))
    recreate_pg_database(params, PGBENCH_DB)
    env = dict(os.environ)
    if params["password"]:
        env["PGPASSWORD"] = params["password"]
    conn = ["-h", params["host"], "-p", str(params["port"]), "-U", params["user"]]
    try:
        subprocess.run(
            [exe, *conn, "-i", "-q", "-s", "10", PGBENCH_DB],
            check=True,
            capture_output=True,
            env=env,
        )
        out = subprocess.run(
            [exe, *conn, "-c", "1", "-j", "1", "-T", "10", "-S", PGBENCH_DB],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        ).stdout
    except subprocess.CalledProcessError as exc:
        return PgBench(note=f"pgbench failed: {(exc.stderr or '')[-200:]}")
    finally:
        recreate_pg_database(params, PGBENCH_DB, drop_only=True)
    tps = re.search(r"tps = ([\d.]+)", out)
    lat = re.search(r"latency average = ([\d.]+) ms", out)
    return PgBench(
        float(tps.group(1)) if tps else None, float(lat.group(1)) if lat else None, "-S -c1 -T10"
    )


# --- main ----------------------------------------------------------------------------------


def sample_indices(rng: random.Random, n: int, count: int) -> list[int]:
    return [rng.randrange(n) for _ in range(count)]


def main(argv: Sequence[str] | None = None) -> int:
    cfg = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="tessera-bench-", dir="/tmp"))
    console.print(f"[bold]tessera matching benchmark[/] {cfg} workdir={workdir}")
    try:
        where = prepare_database(cfg, workdir)
        # Which stored people the stream, the import and the baseline use, chosen up front
        # so that only those are kept in memory.
        pick = random.Random(cfg.seed + 1)
        stream_sources = sample_indices(pick, cfg.n, WARMUP + cfg.queries)
        import_sources = sample_indices(pick, cfg.n, cfg.import_rows // 2)
        baseline_sources = sample_indices(pick, cfg.n, cfg.queries)
        needed = set(stream_sources) | set(import_sources) | set(baseline_sources)

        from tessera.crm.matching.keys import query_keys
        from tessera.crm.matching.rules import active_rules

        realistic = cfg.damage == "realistic"
        factory = PeopleFactory(cfg.seed, birthdates=realistic)
        pop = load_population(cfg, factory, needed)
        rng = random.Random(cfg.seed + 2)
        damager: AnyDamager = RealisticDamager(rng, factory) if realistic else Damager(rng, factory)
        sources = iter(stream_sources)
        warmup = make_stream(WARMUP, sources, pop.kept, damager)
        stream = make_stream(cfg.queries, sources, pop.kept, damager)

        run = run_lookups(warmup, stream, progress, cfg.profile)
        truth = compute_truth(stream, lambda r: query_keys(active_rules("contact"), r))
        qualities = {"rules": measure(stream, truth, run.answers, cfg.show_errors)}
        training = use_probabilistic_mode(cfg.match_probability)
        fs_run = run_lookups(warmup, stream, progress, cfg.profile, "lookups (probabilistic)")
        qualities["probabilistic"] = measure(stream, truth, fs_run.answers, cfg.show_errors)
        use_rules_mode()
        extra = {
            "probabilistic p50 / p95 / p99 ms": triple(fs_run.latency),
            "training records / pairs / s": f"{training.records:,} / {training.pairs:,} / "
            f"{training.seconds:.1f}" + ("" if training.converged else " (not converged)"),
        }
        emails = [pop.kept[i].values["email"] for i in baseline_sources]
        base = run_baseline([e for e in emails if e])

        items = [damaged_copy(pop.kept[i], damager) for i in import_sources]
        items += [new_person(factory) for _ in range(cfg.import_rows - len(items))]
        damager.rng.shuffle(items)
        imp = run_import(cfg, workdir, items)

        pgb = run_pgbench() if cfg.db == "postgres" else None
        report(console, cfg, where, pop, run, qualities, imp, base, pgb, extra)
    finally:
        from django.db import connections

        connections.close_all()
        shutil.rmtree(workdir, ignore_errors=True)
        if cfg.db == "postgres" and not cfg.keep:
            params = pg_params(os.environ.get("TESSERA_TEST_DATABASE_URL", DEFAULT_PG_URL))
            recreate_pg_database(params, BENCH_DB, drop_only=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
