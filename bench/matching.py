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
import cProfile
import csv
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
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
from rich.table import Table

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
P95_TARGET_MS = {"sqlite": 10.0, "postgres": 5.0}
IMPORT_TARGET_ROWS_S = {"postgres": 5000.0}
TARGET_PRECISION, TARGET_RECALL = 0.995, 0.98


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
    a = parser.parse_args(argv)
    return Config(a.db, a.n, a.queries, a.import_rows, a.seed, a.profile, a.show_errors, a.keep)


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
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


# --- synthetic people ----------------------------------------------------------------------

# (locale, weight, phone region, country name, legal suffixes used when adding one)
LOCALES: tuple[tuple[str, float, str, str, tuple[str, ...]], ...] = (
    ("en_US", 0.90, "US", "United States", (", Inc.", " Inc", " LLC", " Corp.", " Co.")),
    ("en_GB", 0.034, "GB", "United Kingdom", (" Ltd", " Limited", " PLC")),
    ("de_DE", 0.033, "DE", "Germany", (" GmbH", " AG", " GmbH & Co. KG")),
    ("fr_FR", 0.033, "FR", "France", (" SA", " SARL", " SAS")),
)
LEGAL_SUFFIXES = frozenset(
    {
        "inc", "llc", "ltd", "limited", "plc", "corp", "corporation", "co", "gmbh", "ag",
        "kg", "sa", "sarl", "sas", "lp", "llp",
    }
)  # fmt: skip
US_FORMATS = (
    "({a}) {e}-{l}",
    "{a}-{e}-{l}",
    "{a}.{e}.{l}",
    "+1 {a} {e} {l}",
    "+1{a}{e}{l}",
    "1-{a}-{e}-{l}",
    "+1 ({a}) {e}-{l}",
)
EMAIL_DOMAINS = ("gmail.com", "yahoo.com", "hotmail.com", "outlook.com", "icloud.com")
KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def ascii_slug(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return re.sub(r"[^a-z]", "", decomposed.encode("ascii", "ignore").decode().lower())


@dataclass
class Person:
    locale: int  # index into LOCALES
    values: dict[str, str]
    id: str = ""


class PeopleFactory:
    """Seeded synthetic people: ~90% en_US, the rest British, German and French."""

    def __init__(self, seed: int) -> None:
        from faker import Faker

        self.rng = random.Random(seed)
        self.fakers = []
        for i, (locale, *_rest) in enumerate(LOCALES):
            fake = Faker(locale)
            fake.seed_instance(seed * 100 + i)
            self.fakers.append(fake)
        self.weights = [w for _, w, *_rest in LOCALES]
        self.emails: set[str] = set()

    def locale(self) -> int:
        return self.rng.choices(range(len(LOCALES)), self.weights)[0]

    def us_phone(self) -> str:
        area = self.rng.randint(201, 989)
        while area % 100 == 11:
            area = self.rng.randint(201, 989)
        exchange, line = self.rng.randint(200, 999), self.rng.randint(0, 9999)
        fmt = self.rng.choice(US_FORMATS)
        return fmt.format(a=area, e=exchange, l=f"{line:04d}")

    def phone(self, loc: int) -> str:
        if LOCALES[loc][0] == "en_US":
            return self.us_phone()
        return str(self.fakers[loc].phone_number())

    def email(self, first: str, last: str) -> str:
        f, last_ = ascii_slug(first) or "x", ascii_slug(last) or "y"
        patterns = (f"{f}.{last_}", f"{f[0]}{last_}", f"{f}{last_}", f"{f}_{last_}")
        local = self.rng.choice(patterns)
        if self.rng.random() < 0.6:
            local += str(self.rng.randint(1, 999))
        domain = self.rng.choice(EMAIL_DOMAINS)
        email = f"{local}@{domain}"
        while email in self.emails:
            email = f"{local}{self.rng.randint(1000, 99999)}@{domain}"
        self.emails.add(email)
        return email

    def address(self, loc: int) -> dict[str, str]:
        fake = self.fakers[loc]
        street = ", ".join(part.strip() for part in str(fake.street_address()).splitlines())
        return {"street": street, "city": str(fake.city()), "postal_code": str(fake.postcode())}

    def person(self) -> Person:
        loc = self.locale()
        fake = self.fakers[loc]
        first, last = str(fake.first_name()), str(fake.last_name())
        values = {
            "first_name": first,
            "last_name": last,
            "email": self.email(first, last) if self.rng.random() < 0.97 else "",
            "phone": self.phone(loc) if self.rng.random() < 0.95 else "",
            "company": str(fake.company()) if self.rng.random() < 0.95 else "",
            "title": str(fake.job())[:128] if self.rng.random() < 0.9 else "",
            **self.address(loc),
            "country": LOCALES[loc][3],
        }
        return Person(loc, values)


# --- damage --------------------------------------------------------------------------------

# Applied in this order (a nickname is looked up before a typo or a swap changes the name).
DAMAGES = ("nickname", "typo", "missing", "phone_format", "moved", "company", "swap")


class Damager:
    """Realistic damage to a copy of a stored person: one or two of DAMAGES."""

    def __init__(self, rng: random.Random, factory: PeopleFactory) -> None:
        from nicknames import NickNamer

        self.rng = rng
        self.factory = factory
        self.nicknamer = NickNamer()

    def applicable(self, name: str, v: dict[str, str], loc: int) -> bool:
        if name == "nickname":
            return bool(self.nicknames(v.get("first_name", "")))
        if name == "phone_format":
            return bool(v.get("phone")) and self.reformat_phone(v["phone"], loc, probe=True) != ""
        if name == "missing":
            return bool(v.get("email") or v.get("phone"))
        if name == "swap":
            return bool(v.get("first_name") and v.get("last_name"))
        if name == "company":
            return bool(v.get("company"))
        return True

    def nicknames(self, first: str) -> list[str]:
        return sorted(self.nicknamer.nicknames_of(first.lower())) if first else []

    def damage(self, person: Person) -> tuple[dict[str, str], list[str]]:
        v = dict(person.values)
        options = [d for d in DAMAGES if self.applicable(d, v, person.locale)]
        chosen = self.rng.sample(options, k=min(len(options), self.rng.choice((1, 2))))
        for name in sorted(chosen, key=DAMAGES.index):
            getattr(self, f"_{name}")(v, person.locale)
        return {k: val for k, val in v.items() if val}, chosen

    def typo(self, word: str) -> str:
        """One slip of the finger: a neighbouring key, a dropped, doubled or swapped letter."""
        if len(word) < 2:
            return word
        low = word.lower()
        i = self.rng.randrange(len(low))
        kind = self.rng.choice(("substitute", "delete", "insert", "transpose"))
        if kind == "substitute":
            row = next((r for r in KEYBOARD_ROWS if low[i] in r), None)
            if row is not None:
                j = row.index(low[i])
                new = self.rng.choice([row[k] for k in (j - 1, j + 1) if 0 <= k < len(row)])
            else:
                new = self.rng.choice("abcdefghijklmnopqrstuvwxyz")
            out = low[:i] + new + low[i + 1 :]
        elif kind == "delete":
            out = low[:i] + low[i + 1 :]
        elif kind == "insert":
            out = low[:i] + low[i] + low[i:]
        else:
            i = min(i, len(low) - 2)
            out = low[:i] + low[i + 1] + low[i] + low[i + 2 :]
        # Keep the original capitalisation where the letters still line up.
        return "".join(
            c.upper() if k < len(word) and word[k].isupper() else c for k, c in enumerate(out)
        )

    def _typo(self, v: dict[str, str], loc: int) -> None:
        target = "last_name" if self.rng.random() < 0.6 else "first_name"
        if not v.get(target):
            target = "last_name"
        v[target] = self.typo(v[target])

    def _nickname(self, v: dict[str, str], loc: int) -> None:
        v["first_name"] = self.rng.choice(self.nicknames(v["first_name"])).title()

    def _swap(self, v: dict[str, str], loc: int) -> None:
        v["first_name"], v["last_name"] = v["last_name"], v["first_name"]

    def _missing(self, v: dict[str, str], loc: int) -> None:
        what = self.rng.choice(("email", "phone", "both"))
        if what in ("email", "both"):
            v["email"] = ""
        if what in ("phone", "both"):
            v["phone"] = ""

    def reformat_phone(self, phone: str, loc: int, *, probe: bool = False) -> str:
        import phonenumbers

        digits = re.sub(r"\D", "", phone.split("x")[0])
        if LOCALES[loc][0] == "en_US" and (
            len(digits) == 10 or (len(digits) == 11 and digits[0] == "1")
        ):
            a, e, line = digits[-10:-7], digits[-7:-4], digits[-4:]
            formats = [f for f in US_FORMATS if f.format(a=a, e=e, l=line) != phone]
            return self.rng.choice(formats).format(a=a, e=e, l=line) if not probe else "ok"
        try:
            number = phonenumbers.parse(phone, LOCALES[loc][2])
        except phonenumbers.NumberParseException:
            return ""
        fmts = (
            phonenumbers.PhoneNumberFormat.E164,
            phonenumbers.PhoneNumberFormat.INTERNATIONAL,
            phonenumbers.PhoneNumberFormat.NATIONAL,
        )
        options = [phonenumbers.format_number(number, f) for f in fmts]
        options = [o for o in options if o != phone]
        if probe or not options:
            return "ok" if options else ""
        return self.rng.choice(options)

    def _phone_format(self, v: dict[str, str], loc: int) -> None:
        v["phone"] = self.reformat_phone(v["phone"], loc) or v["phone"]

    def _moved(self, v: dict[str, str], loc: int) -> None:
        v.update(self.factory.address(loc))

    def _company(self, v: dict[str, str], loc: int) -> None:
        company = v["company"]
        tokens = company.replace(",", " ").split()
        if len(tokens) > 1 and tokens[-1].strip(".").lower() in LEGAL_SUFFIXES:
            cut = company.lower().rstrip().rfind(tokens[-1].lower())
            v["company"] = company[:cut].rstrip(" ,")
        else:
            v["company"] = company + self.rng.choice(LOCALES[loc][4])


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


@dataclass
class Incoming:
    record: dict[str, str]
    source: str | None  # the contact it was derived from; None for a new person
    damage: list[str]


def damaged_copy(person: Person, damager: Damager) -> Incoming:
    record, damage = damager.damage(person)
    return Incoming(record, person.id, damage)


def new_person(factory: PeopleFactory) -> Incoming:
    fresh = factory.person()
    return Incoming({k: v for k, v in fresh.values.items() if v}, None, ["new"])


def make_stream(
    count: int, sources: Iterator[int], kept: dict[int, Person], damager: Damager
) -> list[Incoming]:
    """~80% damaged copies of stored contacts, ~20% people not in the database."""
    return [
        damaged_copy(kept[next(sources)], damager)
        if damager.rng.random() < 0.8
        else new_person(damager.factory)
        for _ in range(count)
    ]


# --- measuring -----------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass
class Latency:
    seconds: list[float] = field(default_factory=list)

    @property
    def per_s(self) -> float:
        return len(self.seconds) / sum(self.seconds) if self.seconds else 0.0

    def ms(self, p: float) -> float:
        return percentile(self.seconds, p) * 1000


@dataclass
class LookupRun:
    latency: Latency
    predictions: list[str | None]
    matched_ids: list[list[str]]
    examined: list[int]
    limit_hits: int


def maybe_profile(cfg: Config, name: str) -> cProfile.Profile | None:
    if cfg.profile is None:
        return None
    cfg.profile.mkdir(parents=True, exist_ok=True)
    prof = cProfile.Profile()
    prof.enable()
    return prof


def finish_profile(cfg: Config, prof: cProfile.Profile | None, name: str) -> None:
    if prof is not None and cfg.profile is not None:
        prof.disable()
        prof.dump_stats(cfg.profile / f"{name}.prof")


def run_lookups(cfg: Config, warmup: list[Incoming], stream: list[Incoming]) -> LookupRun:
    from tessera.crm.matching import engine

    for item in warmup:
        engine.find_matches("contact", item.record)
    run = LookupRun(Latency(), [], [], [], 0)
    prof = maybe_profile(cfg, "lookups")
    with progress("lookups", len(stream)) as advance:
        for item in stream:
            t0 = time.perf_counter()
            result = engine.find_matches("contact", item.record)
            run.latency.seconds.append(time.perf_counter() - t0)
            run.predictions.append(result.matches[0].id if result.matches else None)
            run.matched_ids.append([m.id for m in result.matches])
            run.examined.append(result.candidates_examined)
            run.limit_hits += result.limit_reached
            advance(1)
    finish_profile(cfg, prof, "lookups")
    return run


@dataclass
class Quality:
    eligible: int = 0
    ineligible: int = 0
    new_people: int = 0
    predicted: int = 0
    correct: int = 0
    found_eligible: int = 0
    false_new: int = 0  # a new person matched to an existing contact
    false_other: int = 0  # a copy matched to a contact other than its source
    missed_not_retrieved: int = 0
    missed_ranked_lower: int = 0
    misses_by_damage: Counter[str] = field(default_factory=Counter)
    false_by_damage: Counter[str] = field(default_factory=Counter)
    eligible_by_damage: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.correct / self.predicted if self.predicted else 1.0

    @property
    def recall(self) -> float:
        return self.found_eligible / self.eligible if self.eligible else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def _describe(obj: Any) -> str:
    get = obj.get if isinstance(obj, dict) else lambda f, d="": getattr(obj, f, d)
    return " | ".join(str(get(f, "")) for f in FIELDS[:-1])


def measure_quality(cfg: Config, stream: list[Incoming], run: LookupRun) -> Quality:
    from tessera.crm.matching import engine
    from tessera.crm.matching.models import MatchingRule
    from tessera.crm.matching.rules import active_rules
    from tessera.crm.models import Contact

    standard = set(
        MatchingRule.objects.filter(object="contact", is_standard=True).values_list("pk", flat=True)
    )
    rules = [r for r in active_rules("contact") if r.id in standard]
    wanted = {i.source for i in stream if i.source} | {p for p in run.predictions if p}
    stored = Contact.objects.in_bulk(list(wanted))
    q = Quality()
    for item, predicted, matched in zip(stream, run.predictions, run.matched_ids, strict=True):
        tag = "+".join(item.damage)
        eligible = item.source is not None and any(
            engine.best_score(rule, item.record, stored[item.source]) is not None for rule in rules
        )
        if item.source is None:
            q.new_people += 1
        elif eligible:
            q.eligible += 1
            q.eligible_by_damage[tag] += 1
        else:
            q.ineligible += 1
        if predicted is not None:
            q.predicted += 1
            if predicted == item.source:
                q.correct += 1
            elif item.source is None:
                q.false_new += 1
                q.false_by_damage[tag] += 1
            else:
                q.false_other += 1
                q.false_by_damage[tag] += 1
        if eligible:
            if predicted == item.source:
                q.found_eligible += 1
            else:
                q.misses_by_damage[tag] += 1
                if item.source in matched:
                    q.missed_ranked_lower += 1
                else:
                    q.missed_not_retrieved += 1
        wrong = predicted is not None and predicted != item.source
        missed = eligible and predicted != item.source
        if (wrong or missed) and len(q.examples) < cfg.show_errors:
            lines = [
                f"[{'false match' if wrong else 'missed'}] damage={tag}",
                f"  incoming:  {_describe(item.record)}",
            ]
            if item.source:
                lines.append(f"  source:    {_describe(stored[item.source])}")
            if predicted:
                lines.append(f"  predicted: {_describe(stored[predicted])}")
            q.examples.append("\n".join(lines))
    return q


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
    prof = maybe_profile(cfg, "import")
    with progress("import (CSV)", len(items)) as advance:
        db0, py0, t0 = backend_cpu_s(backend), time.process_time(), time.perf_counter()
        summary = import_contacts(path, progress=advance)
        seconds = time.perf_counter() - t0
        py1, db1 = time.process_time(), backend_cpu_s(backend)
    finish_profile(cfg, prof, "import")
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


# --- report --------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "[green]met[/]" if ok else "[red]missed[/]"


def report(
    cfg: Config,
    where: str,
    pop: Population,
    run: LookupRun,
    q: Quality,
    imp: ImportRun,
    base: Latency,
    pgb: PgBench | None,
) -> dict[str, Any]:
    p95_target = P95_TARGET_MS[cfg.db]
    import_target = IMPORT_TARGET_ROWS_S.get(cfg.db)
    p95, base_p95 = run.latency.ms(95), base.ms(95)
    cand_mean = sum(run.examined) / max(len(run.examined), 1)
    met = {
        "p95": p95 <= p95_target,
        "precision": q.precision >= TARGET_PRECISION,
        "recall": q.recall >= TARGET_RECALL,
    }
    if import_target:
        met["import"] = imp.per_s >= import_target

    table = Table(title=f"Matching benchmark: {cfg.db}, {cfg.n:,} contacts, seed {cfg.seed}")
    table.add_column("section")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target")
    rows: list[tuple[str, str, str, str]] = [
        ("setup", "database", where, ""),
        ("load", "contacts / match keys", f"{cfg.n:,} / {pop.keys:,}", ""),
        ("load", "rows/s (generate+keys+insert)", f"{cfg.n / pop.load_seconds:,.0f}", ""),
        ("load", "rows/s (insert only)", f"{cfg.n / pop.insert_seconds:,.0f}", ""),
        ("lookup", "lookups", f"{len(run.latency.seconds):,} (+{WARMUP} warm-up)", ""),
        ("lookup", "lookups/s", f"{run.latency.per_s:,.0f}", ""),
        ("lookup", "p50 / p99 ms", f"{run.latency.ms(50):.2f} / {run.latency.ms(99):.2f}", ""),
        ("lookup", "p95 ms", f"{p95:.2f}", f"<= {p95_target} {verdict(met['p95'])}"),
        ("lookup", "candidates mean / max", f"{cand_mean:.1f} / {max(run.examined)}", ""),
        ("lookup", "candidate limit hit", f"{run.limit_hits}", ""),
        (
            "quality",
            "precision",
            f"{q.precision:.4f}",
            f">= {TARGET_PRECISION} {verdict(met['precision'])}",
        ),
        (
            "quality",
            "recall (eligible)",
            f"{q.recall:.4f}",
            f">= {TARGET_RECALL} {verdict(met['recall'])}",
        ),
        ("quality", "F1", f"{q.f1:.4f}", ""),
        (
            "quality",
            "eligible / ineligible / new",
            f"{q.eligible} / {q.ineligible} / {q.new_people}",
            "",
        ),
        ("quality", "predicted / correct", f"{q.predicted} / {q.correct}", ""),
        ("quality", "false: new person / other contact", f"{q.false_new} / {q.false_other}", ""),
        (
            "quality",
            "missed: not retrieved / ranked lower",
            f"{q.missed_not_retrieved} / {q.missed_ranked_lower}",
            "",
        ),
        ("import", "rows", f"{imp.rows:,} in {imp.seconds:.1f} s", ""),
        (
            "import",
            "rows/s",
            f"{imp.per_s:,.0f}",
            f">= {import_target:,.0f} {verdict(met['import'])}" if import_target else "",
        ),
        ("import", "created/linked/flagged/rejected", "/".join(map(str, imp.summary.values())), ""),
        ("import", "CPU per row: Python / database us", _cpu_split(imp), ""),
        ("baseline", "email lookup p50 / p95 / p99 ms", _triple(base), ""),
        ("baseline", "email lookups/s", f"{base.per_s:,.0f}", ""),
        ("baseline", "our p95 / baseline p95", f"{p95 / base_p95:.1f}x", ""),
    ]
    if pgb is not None:
        value = (
            f"{pgb.tps:,.0f} tps, {pgb.latency_ms:.3f} ms" if pgb.tps and pgb.latency_ms else "-"
        )
        rows.append(("baseline", f"pgbench {pgb.note}", value, ""))
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if q.misses_by_damage or q.false_by_damage:
        diag = Table(title="Errors by damage (misses of eligible records / false matches)")
        diag.add_column("damage")
        for name in ("eligible", "missed", "false"):
            diag.add_column(name, justify="right")
        for tag in sorted(set(q.misses_by_damage) | set(q.false_by_damage)):
            counts = (q.eligible_by_damage[tag], q.misses_by_damage[tag], q.false_by_damage[tag])
            diag.add_row(tag, *map(str, counts))
        console.print(diag)
    for example in q.examples:
        console.print(example, markup=False, highlight=False)

    summary: dict[str, Any] = {
        "db": cfg.db,
        "n": cfg.n,
        "queries": cfg.queries,
        "seed": cfg.seed,
        "match_keys": pop.keys,
        "load_rows_s": round(cfg.n / pop.load_seconds),
        "lookups_s": round(run.latency.per_s),
        "p50_ms": round(run.latency.ms(50), 3),
        "p95_ms": round(p95, 3),
        "p99_ms": round(run.latency.ms(99), 3),
        "candidates_mean": round(cand_mean, 2),
        "candidates_max": max(run.examined),
        "limit_hits": run.limit_hits,
        "precision": round(q.precision, 4),
        "recall": round(q.recall, 4),
        "f1": round(q.f1, 4),
        "eligible": q.eligible,
        "new_people": q.new_people,
        "predicted": q.predicted,
        "correct": q.correct,
        "import_rows_s": round(imp.per_s),
        "import_cpu_us_per_row": {
            "python": round(imp.cpu_us_per_row()[0]),
            "database": None if imp.database_cpu_s is None else round(imp.cpu_us_per_row()[1] or 0),
        },
        "import": imp.summary,
        "baseline_p50_ms": round(base.ms(50), 3),
        "baseline_p95_ms": round(base_p95, 3),
        "baseline_p99_ms": round(base.ms(99), 3),
        "baseline_lookups_s": round(base.per_s),
        "p95_vs_baseline": round(p95 / base_p95, 2),
        "targets_met": met,
    }
    if pgb is not None:
        summary["pgbench_tps"] = pgb.tps
        summary["pgbench_latency_ms"] = pgb.latency_ms
    print(json.dumps(summary))
    return summary


def _cpu_split(imp: ImportRun) -> str:
    """Python and database CPU per row, and the rows/s that much CPU allows on this
    machine's cores if every core were busy all the time."""
    python_us, db_us = imp.cpu_us_per_row()
    total = python_us + (db_us or 0.0)
    cores = os.cpu_count() or 1
    bound = f" (all {cores} cores busy: <= {cores * 1e6 / total:,.0f} rows/s)" if total else ""
    return f"{python_us:,.0f} / {'n/a' if db_us is None else f'{db_us:,.0f}'}{bound}"


def _triple(lat: Latency) -> str:
    return f"{lat.ms(50):.3f} / {lat.ms(95):.3f} / {lat.ms(99):.3f}"


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

        factory = PeopleFactory(cfg.seed)
        pop = load_population(cfg, factory, needed)
        damager = Damager(random.Random(cfg.seed + 2), factory)
        sources = iter(stream_sources)
        warmup = make_stream(WARMUP, sources, pop.kept, damager)
        stream = make_stream(cfg.queries, sources, pop.kept, damager)

        run = run_lookups(cfg, warmup, stream)
        quality = measure_quality(cfg, stream, run)
        emails = [pop.kept[i].values["email"] for i in baseline_sources]
        base = run_baseline([e for e in emails if e])

        items = [damaged_copy(pop.kept[i], damager) for i in import_sources]
        items += [new_person(factory) for _ in range(cfg.import_rows - len(items))]
        damager.rng.shuffle(items)
        imp = run_import(cfg, workdir, items)

        pgb = run_pgbench() if cfg.db == "postgres" else None
        report(cfg, where, pop, run, quality, imp, base, pgb)
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
