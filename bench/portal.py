"""Member portal and staff dashboard server time over HTTP on PostgreSQL, next to a static file.

    .venv/bin/python bench/portal.py [--movements 1000000] [--member-movements 10000]
                                     [--seconds 15] [--clients 8]

Seeds a fresh database (``tessera_bench_portal``) with ``--movements`` wallet movements over
~2,000 members of one program, the measured member holding exactly ``--member-movements``,
all in the last 12 weeks; each movement is what ``loyalty.wallet.move_points`` writes (a
journal entry, its two postings, the wallet transaction, the FIFO lot or the draws from
lots, a timeline entry) with what its service writes beside it (an order and its line, a
captured top-up transaction), bulk-copied (``COPY``) in time order in batches, then
``VACUUM ANALYZE`` (the steady state autovacuum keeps). Balances (wallet accounts, the
program's issued and redeemed accounts), running ``balance_after`` totals and lots agree
with the movements; ``--verify`` runs ``ledger verify`` over it all. Refused orders come
from orders a wallet could not cover; a few free checkouts (some checked in) give the
dashboard's event charts rows.

Then, over gunicorn (argv of ``tessera serve``, 4 workers x 4 threads, no access log), each
page with ``--clients`` keep-alive clients signed in by a session cookie made up front
(``force_login`` on the same database), after ``--warm-seconds`` of the same load:
- ``/`` and ``/wallet`` of the measured member (target p95 <= 50 ms each), and the chart
  the wallet page embeds (``/wallet/chart.svg``, no target);
- ``/staff/`` for a staff user (target p95 <= 300 ms), and its six chart images in turn
  (no target);
- the ceiling: a static file (``/static/portal/portal.css``, answered by WhiteNoise).
Per row: requests/s, p50/p95/p99, errors, and CPU per request from /proc (gunicorn's
processes, PostgreSQL's backends on the bench database, this process's clients, and the
rest of the host). Queries per page are counted in-process (Django's test client, the same
middleware, CaptureQueriesContext, without BEGIN/COMMIT/SAVEPOINT/RELEASE), with each
page's slowest statements; ``EXPLAIN (ANALYZE, BUFFERS)`` of the dashboard's slowest one
is printed. It asserts nothing; it measures. PostgreSQL only (the seeding uses COPY).

The database stays after the run: ``--reuse`` measures it again without seeding (after an
index tried on it by hand, say; drop what you tried afterwards).
"""

from __future__ import annotations

import argparse
import atexit
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.checkout import (  # noqa: E402
    SKIP_SQL,
    Cpu,
    children,
    host_busy_seconds,
    report_error,
    stop_all,
)
from bench.wallet import (  # noqa: E402
    Result,
    admin_conn,
    backend_cpu_seconds,
    db_url,
    free_port,
    recreate,
    run_clients,
    setup_django,
)

from tests.support.stack import wait_port  # noqa: E402

BENCH_DB = "tessera_bench_portal"
MEMBERS = 2000
WEEKS = 12
BATCH = 20_000  # movements per COPY transaction
EXPIRE_DAYS = 90  # earned points expire: lots 60 to 84 days old show as "expiring soon"
LOW_BALANCE = 500
STATIC = "/static/portal/portal.css"
STAFF_CHARTS = ["points", "credit", "refused", "registrations", "revenue", "checkins"]
# Type mix, and amounts in points (1 EUR = 100 points, so a top-up's cents are its points).
MIX = [("points_earned", 45), ("order_placed", 30), ("credit_purchased", 15), ("adjustment", 10)]
EARN = [10, 20, 25, 50, 100]
TOPUP = [1000, 2000, 2500, 5000]
ADJUST = [50, 100, 250]
PRODUCTS = [("Sticker pack", 150), ("Mug", 300), ("Tote bag", 500), ("T-shirt", 900),
            ("Hoodie", 1200)]  # fmt: skip
ACTIVITIES = 12


# --- seeding -------------------------------------------------------------------------------


class Copier:
    """COPY into a model's table: the given columns, then every other column at its default
    (a NOT NULL column without one must be given)."""

    def __init__(self, model: Any, given: list[str]) -> None:
        self.table = model._meta.db_table
        fields = {f.name: f for f in model._meta.concrete_fields}
        cols = [fields[g].column for g in given]
        self.defaults: tuple[Any, ...] = ()
        for f in model._meta.concrete_fields:
            if f.name in given or f.primary_key:
                continue
            value = f.get_default()
            if value is None and not f.null:
                raise ValueError(f"{self.table}.{f.column} needs a value")
            if isinstance(value, dict | list):
                value = json.dumps(value)
            cols.append(f.column)
            self.defaults += (value,)
        self.sql = f'COPY "{self.table}" ({", ".join(cols)}) FROM STDIN'
        self.rows: list[tuple[Any, ...]] = []

    def add(self, *values: Any) -> None:
        self.rows.append(values + self.defaults)

    def flush(self, cursor: Any) -> int:
        with cursor.copy(self.sql) as copy:
            for row in self.rows:
                copy.write_row(row)
        n, self.rows = len(self.rows), []
        return n


@dataclass
class Plan:
    """One member's movements, simulated in time order before anything is written."""

    index: int
    # (ms since the window's start, member index, type, points, balance_after, detail):
    # detail is a lot's local index for a credit, the draws [(local lot, points)] of a debit.
    moves: list[tuple[int, int, str, int, int, Any]]
    lots: list[list[int]]  # [points, remaining, expires_ms or -1]
    refused: list[tuple[int, int, int]]  # (ms, order points, balance then)
    balance: int = 0


def simulate(index: int, count: int, span_ms: int, rng: random.Random) -> Plan:
    plan = Plan(index, [], [], [])
    kinds, weights = zip(*MIX, strict=True)
    times = sorted(rng.sample(range(span_ms), count))
    expire_ms = EXPIRE_DAYS * 86_400_000
    balance = 0
    head = 0  # first lot with points left (FIFO)
    for t in times:
        kind = rng.choices(kinds, weights)[0]
        if kind == "points_earned":
            points = rng.choice(EARN)
        elif kind == "credit_purchased":
            points = rng.choice(TOPUP)
        elif kind == "adjustment":
            points = rng.choice(ADJUST) * (-1 if balance > 1000 and rng.random() < 0.4 else 1)
        else:
            points = -sum(rng.choice(PRODUCTS)[1] for _ in range(rng.choice([1, 1, 1, 2])))
            if balance + points < 0:
                if rng.random() < 0.3:  # the member tried: a refused order is recorded
                    plan.refused.append((t, -points, balance))
                kind, points = "credit_purchased", rng.choice(TOPUP)  # and bought credit
        balance += points
        if points > 0:
            expires = t + expire_ms if kind == "points_earned" else -1
            plan.lots.append([points, points, expires])
            plan.moves.append((t, index, kind, points, balance, len(plan.lots) - 1))
        else:
            draws, left = [], -points
            while left:
                lot = plan.lots[head]
                take = min(lot[1], left)
                if take:
                    draws.append((head, take))
                    lot[1] -= take
                    left -= take
                if lot[1] == 0:
                    head += 1
            plan.moves.append((t, index, kind, points, balance, draws))
    plan.balance = balance
    return plan


def member_counts(total: int, measured: int, rng: random.Random) -> list[int]:
    """Movements per member: the measured member first with exactly ``measured``, the rest
    spread unevenly (log-normal weights) over the other members."""
    others = MEMBERS - 1
    weights = [rng.lognormvariate(0, 1) for _ in range(others)]
    counts = Counter(rng.choices(range(others), weights, k=total - measured))
    return [measured, *(counts.get(i, 0) for i in range(others))]


def ulid_at(prefix: str, seconds: float) -> str:
    from ulid import ULID

    return f"{prefix}_{ULID.from_timestamp(seconds)}"


def seed(total: int, measured: int, seed_value: int = 1) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from tessera.billing.models import PaymentMethod, Transaction
    from tessera.crm.models import Contact, TimelineEntry
    from tessera.ledger.models import JournalEntry, LedgerAccount, Posting
    from tessera.loyalty.activities import ActivitySpec, create_activity
    from tessera.loyalty.models import (
        LotDraw,
        Member,
        Order,
        OrderLine,
        PointLot,
        WalletTransaction,
    )
    from tessera.loyalty.ordering import ProductSpec, create_product
    from tessera.loyalty.programs import ProgramSpec, create_program, enroll_member
    from tessera.portal.identity import user_for_contact

    rng = random.Random(seed_value)
    t0 = time.perf_counter()
    program = create_program(ProgramSpec(**{"name": "Bench Club", "points_per_unit": 100, "currency": "EUR",
                              "low_balance_threshold": LOW_BALANCE,
                              "points_expire_after_days": EXPIRE_DAYS}))  # fmt: skip
    products = [create_product(ProductSpec(**{"program_id": program.pk, "name": n, "price_points": p}))
                for n, p in PRODUCTS]  # fmt: skip
    by_price = {p.price_points: p for p in products}
    activities = [create_activity(ActivitySpec(**{"program_id": program.pk, "kind": "question", "points": p,
                                   "title": f"Quiz {i + 1}", "question": f"Question {i + 1}?",
                                   "options": ["Yes", "No"], "correct_option": "Yes"}))
                  for i, p in enumerate(EARN * 3)][:ACTIVITIES]  # fmt: skip
    # The measured member through the service, the others in bulk as enroll_member writes them.
    ada = Contact.objects.create(first_name="Ada", last_name="Measured", email="ada@bench.test")
    first, _ = enroll_member(program.pk, contact_id=ada.pk)
    contacts = Contact.objects.bulk_create(
        Contact(first_name=f"Member{i}", last_name="Bench", email=f"member{i}@bench.test")
        for i in range(1, MEMBERS)
    )
    member_ids = [ulid_at("mem", time.time()) for _ in contacts]
    wallets = LedgerAccount.objects.bulk_create(
        LedgerAccount(code=f"wallet:{m}", name=f"Wallet of {c} ({program.name})", asset="PTS")
        for m, c in zip(member_ids, contacts, strict=True)
    )
    Member.objects.bulk_create(
        Member(id=m, program=program, contact=c, wallet=w)
        for m, c, w in zip(member_ids, contacts, wallets, strict=True)
    )
    bulk = {m.pk: m for m in Member.objects.filter(pk__in=member_ids).select_related("wallet")}
    members = [first, *(bulk[m] for m in member_ids)]
    card = PaymentMethod.objects.create(contact=ada, stripe_id="pm_bench_ada", brand="visa",
                                        last4="4242", exp_month=12, exp_year=2031)  # fmt: skip
    t_setup = time.perf_counter() - t0

    # Every member's movements, simulated in memory, then merged into time order.
    now = timezone.now().replace(microsecond=0) - timedelta(minutes=5)
    span_ms = WEEKS * 7 * 86_400_000
    start = now.timestamp() - span_ms / 1000
    counts = member_counts(total, measured, rng)
    plans = [simulate(i, n, span_ms, rng) for i, n in enumerate(counts)]
    moves = sorted((m for p in plans for m in p.moves), key=lambda m: m[0])
    refused = sorted((t, p.index, pts, bal) for p in plans for t, pts, bal in p.refused)
    t_plan = time.perf_counter() - t0 - t_setup

    issued, redeemed = program.issuance_account_id, program.redemption_account_id
    wallet_of = [m.wallet_id for m in members]
    contact_of = [m.contact_id for m in members]
    lot_ids: list[list[int]] = [[] for _ in members]
    copy = {
        "entry": Copier(JournalEntry, ["id", "kind", "reference", "memo", "object_type",
                                       "object_id", "created_at"]),
        "posting": Copier(Posting, ["entry", "account", "amount"]),
        "wtx": Copier(WalletTransaction, ["id", "member", "type", "points", "balance_after",
                                          "reference", "detail", "journal_entry",
                                          "created_at"]),
        "txn": Copier(Transaction, ["id", "contact", "payment_method", "amount", "currency",
                                    "status", "purpose", "purpose_id", "stripe_payment_intent_id",
                                    "settled_at", "created_at", "updated_at"]),
        "lot": Copier(PointLot, ["id", "member", "source", "points", "remaining", "expires_at",
                                 "created_at"]),
        "draw": Copier(LotDraw, ["lot", "debit", "points"]),
        "order": Copier(Order, ["id", "member", "status", "total_points", "wallet_transaction",
                                "balance_at_refusal", "created_at"]),
        "line": Copier(OrderLine, ["order", "product", "quantity", "unit_points"]),
        "timeline": Copier(TimelineEntry, ["id", "contact", "kind", "object_type", "object_id",
                                           "summary", "data", "occurred_at"]),
    }  # fmt: skip
    written: Counter[str] = Counter()
    labels = {k: str(WalletTransaction.Type(k).label) for k, _ in MIX}
    next_lot = 0
    counter_total = {issued: 0, redeemed: 0}
    with connection.cursor() as c:
        c.execute("SET synchronous_commit = off")
    for b in range(0, len(moves), BATCH):
        with transaction.atomic(), connection.cursor() as dj:
            cur = dj.cursor  # psycopg's own cursor, for COPY
            for t, i, kind, points, after, detail in moves[b : b + BATCH]:
                sec = start + t / 1000
                at = datetime.fromtimestamp(sec, UTC)
                wtx = ulid_at("wtx", sec)
                entry = ulid_at("jen", sec)
                if kind == "points_earned":
                    activity = activities[EARN.index(points) % len(activities)]
                    obj_type, obj = "completion", ulid_at("cmp", sec)
                    info: dict[str, Any] = {"activity_id": activity.pk, "activity": activity.title,
                                            "kind": "question"}  # fmt: skip
                    counter = issued
                elif kind == "credit_purchased":
                    obj_type, obj = "transaction", ulid_at("txn", sec)
                    info = {"amount": points, "currency": "EUR", "transaction_id": obj}
                    copy["txn"].add(obj, contact_of[i], card.pk if i == 0 else None, points, "EUR",
                                    "captured", "wallet_topup", members[i].pk, f"pi_{obj}", at, at,
                                    at)  # fmt: skip
                    counter = issued
                elif kind == "adjustment":
                    obj_type, obj = "adjustment", ulid_at("adj", sec)
                    info = {"reason": "goodwill" if points > 0 else "correction", "by": "staff"}
                    counter = issued if points > 0 else redeemed
                else:
                    obj_type, obj = "order", ulid_at("ord", sec)
                    lines = split_order(-points)
                    info = {"lines": [{"product_id": by_price[p].pk, "name": by_price[p].name,
                                       "quantity": q} for p, q in lines]}  # fmt: skip
                    counter = redeemed
                reference = {"completion": "completion", "transaction": "topup"}.get(
                    obj_type, obj_type
                )
                copy["entry"].add(entry, kind, f"{reference}:{obj}", f"{labels[kind]} {points:+d} PTS",
                                  obj_type, obj, at)  # fmt: skip
                for account, amount in sorted([(wallet_of[i], points), (counter, -points)]):
                    copy["posting"].add(entry, account, amount)
                counter_total[counter] -= points
                copy["wtx"].add(wtx, members[i].pk, kind, points, after, obj, json.dumps(info),
                                entry, at)  # fmt: skip
                if points > 0:
                    next_lot += 1
                    lot_ids[i].append(next_lot)
                    lot_points, remaining, expires = plans[i].lots[detail]
                    copy["lot"].add(next_lot, members[i].pk, wtx, lot_points, remaining,
                                    None if expires < 0 else datetime.fromtimestamp(
                                        start + expires / 1000, UTC), at)  # fmt: skip
                else:
                    for local, take in detail:
                        copy["draw"].add(lot_ids[i][local], wtx, take)
                if kind == "order_placed":
                    copy["order"].add(obj, members[i].pk, "placed", -points, wtx, None, at)
                    for price, qty in lines:
                        copy["line"].add(obj, by_price[price].pk, qty, price)
                    copy["timeline"].add(ulid_at("tle", sec), contact_of[i], "order", "order", obj,
                                         f"Order {obj}: {-points:,} pts", "{}", at)  # fmt: skip
                copy["timeline"].add(
                    ulid_at("tle", sec), contact_of[i], "wallet_transaction", "wallettransaction",
                    wtx, f"{labels[kind]}: {points:+,d} points (balance {after:,d})",
                    json.dumps({"type": kind, "points": points, "balance_after": after,
                                "member_id": members[i].pk}), at,
                )  # fmt: skip
            for name in ("entry", "posting", "txn", "wtx", "lot", "draw", "order", "line",
                         "timeline"):  # fmt: skip
                written[name] += copy[name].flush(cur)
        done = min(b + BATCH, len(moves))
        if done % 200_000 < BATCH or done == len(moves):
            print(f"  {done:,} movements written, {time.perf_counter() - t0:.0f} s", flush=True)
    with transaction.atomic():
        for t, i, pts, bal in refused:
            sec = start + t / 1000
            at = datetime.fromtimestamp(sec, UTC)
            copy["order"].add(ulid_at("ord", sec), members[i].pk, "refused", pts, None, bal, at)
        with connection.cursor() as dj:
            written["refused orders"] = copy["order"].flush(dj.cursor)
            dj.execute(f"SELECT setval(pg_get_serial_sequence('{PointLot._meta.db_table}', 'id'), "
                       f"{max(next_lot, 1)})")  # fmt: skip
        for m, p in zip(members, plans, strict=True):
            m.wallet.balance = p.balance
        LedgerAccount.objects.bulk_update([m.wallet for m in members], ["balance"], batch_size=500)
        for pk, moved in counter_total.items():
            LedgerAccount.objects.filter(pk=pk).update(balance=moved)
        last: dict[int, float] = {}
        for t, i, *_ in moves:
            last[i] = t
        Contact.objects.bulk_update(
            [Contact(pk=contact_of[i], last_activity_at=datetime.fromtimestamp(start + t / 1000, UTC))
             for i, t in last.items()], ["last_activity_at"], batch_size=500)  # fmt: skip
    t_copy = time.perf_counter() - t0 - t_setup - t_plan

    events = seed_events(ada)
    staff = get_user_model().objects.create_user("staff", "staff@bench.test", is_staff=True)
    ada_user = user_for_contact(ada)
    t_events = time.perf_counter() - t0 - t_setup - t_plan - t_copy
    connection.close()
    vacuum()
    t_vacuum = time.perf_counter() - t0 - t_setup - t_plan - t_copy - t_events
    return {
        "member": first, "ada_user": ada_user, "staff": staff, "events": events,
        "rows": dict(written), "counts": counts, "refused": len(refused),
        "times": {"setup": t_setup, "plan": t_plan, "copy": t_copy, "events": t_events,
                  "vacuum": t_vacuum, "total": time.perf_counter() - t0},
    }  # fmt: skip


def split_order(total: int) -> list[tuple[int, int]]:
    """The product lines an order total was drawn from (one or two products)."""
    prices = [p for _, p in PRODUCTS]
    if total in prices:
        return [(total, 1)]
    for a in prices:
        if total - a in prices:
            return [(a, 2)] if total == 2 * a else sorted([(a, 1), (total - a, 1)])
    raise ValueError(total)


def seed_events(ada: Any) -> list[str]:
    """Three upcoming events, each with free checkouts (two of them Ada's), a third of the
    attendees checked in."""
    from django.utils import timezone

    from tessera.events import services
    from tessera.events.checkin import check_in
    from tessera.events.checkout import check_out
    from tessera.events.models import Attendee
    from tessera.events.requests import AttendeeIn, CheckoutIn, LineIn, PersonIn

    ids = []
    for e in range(3):
        begins = timezone.now() + timedelta(days=7 + 10 * e)
        event = services.create_event(services.EventSpec(
            name=f"Bench Meetup {e + 1}", starts_at=begins, ends_at=begins + timedelta(hours=4),
            timezone="Europe/Berlin", currency="EUR",
        ))  # fmt: skip
        item = services.add_item(event.pk, services.ItemSpec(name="Free pass", kind="ticket",
                                                             price=0))  # fmt: skip
        people = [
            PersonIn(f"Guest{e}x{k}", "Visitor", f"guest{e}.{k}@bench.test") for k in range(8)
        ]
        if e < 2:
            people.append(PersonIn(ada.first_name, ada.last_name, ada.email))
        for k, person in enumerate(people):
            done = check_out(
                CheckoutIn(event.pk, person, (AttendeeIn(person, (LineIn(item.pk),)),))
            )
            if k % 3 == 0 and person.email != ada.email:
                check_in(Attendee.objects.get(checkout_id=done.checkout_id).pk)
        ids.append(event.pk)
    return ids


def vacuum() -> None:
    import psycopg

    with psycopg.connect(db_url(BENCH_DB), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")


def reused() -> dict[str, Any]:
    """What ``seed`` returns, read back from the database a previous run left (to measure it
    again after trying an index on it, say)."""
    from django.contrib.auth import get_user_model
    from django.db.models import Count

    from tessera.loyalty.models import Member, Order, WalletTransaction
    from tessera.portal.models import PortalAccount

    ada = PortalAccount.objects.select_related("user").get(contact__email="ada@bench.test").user
    first = Member.objects.get(contact__email="ada@bench.test")
    per = dict(WalletTransaction.objects.order_by().values_list("member").annotate(n=Count("id")))
    counts = [per.pop(first.pk, 0), *per.values()]
    return {"member": first, "ada_user": ada, "staff": get_user_model().objects.get(username="staff"),
            "rows": {"wtx": sum(counts)}, "counts": counts,
            "refused": Order.objects.filter(status=Order.Status.REFUSED).count(), "times": None}  # fmt: skip


def session_cookie(user: Any) -> str:
    from django.db import connections
    from django.test import Client

    client = Client()
    client.force_login(user)
    value = client.cookies["sessionid"].value
    connections.close_all()
    return value


# --- measuring -----------------------------------------------------------------------------


@dataclass
class Page:
    label: str
    paths: list[str]  # taken in turn
    cookie: str  # the session, or "" for none
    target_p95: float | None = None


@dataclass
class Row:
    page: Page
    clients: int
    result: Result
    errors: Counter[str]
    cpu_ms: dict[str, float]

    @property
    def other_ms(self) -> float:
        return self.cpu_ms["host"] - sum(v for g, v in self.cpu_ms.items() if g != "host")

    @property
    def verdict(self) -> str:
        target = self.page.target_p95
        if target is None:
            return ""
        met = self.result.pct(95) <= target and not self.errors
        return f"p95 <= {target:.0f} ms: {'met' if met else 'MISSED'}"


class PortalCpu(Cpu):
    """bench/checkout.py's CPU split, for this database and without localstripe."""

    def __init__(self, conn: Any, gunicorn: subprocess.Popen[bytes]) -> None:
        super().__init__(conn, gunicorn, None, SimpleNamespace(proc=None))  # type: ignore[arg-type]

    def snapshot(self) -> dict[str, dict[int, float]]:
        pg = [r[0] for r in self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (BENCH_DB,))]  # fmt: skip
        return {
            "python": {p: backend_cpu_seconds(p) or 0.0 for p in self.tree(self.gunicorn.pid)},
            "postgres": {p: backend_cpu_seconds(p) or 0.0 for p in pg},
            "client": {0: time.process_time()},
            "host": {0: host_busy_seconds()},
        }


def get_maker(page: Page, port: int) -> Callable[[int, Counter[str]], Callable[[], bool]]:
    headers = {"Cookie": f"sessionid={page.cookie}"} if page.cookie else {}

    def make(i: int, errors: Counter[str]) -> Callable[[], bool]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        n = i

        def call() -> bool:
            nonlocal n, conn
            path = page.paths[n % len(page.paths)]
            n += 1
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                report_error(page.label, type(exc).__name__, str(exc), errors)
                return False
            if resp.status != 200:
                report_error(page.label, str(resp.status), f"{path} {data[:300]!r}", errors)
                return False
            return True

        return call

    return make


def measure(page: Page, port: int, clients: int, seconds: float, cpu: PortalCpu) -> Row:
    errors: Counter[str] = Counter()
    make = get_maker(page, port)
    before = cpu.snapshot()
    count, elapsed, lat = run_clients(clients, seconds, lambda i: make(i, errors))
    after = cpu.snapshot()
    return Row(page, clients, Result(page.label, clients, count, elapsed, lat), errors,
               Cpu.per_request(before, after, count))  # fmt: skip


def start_gunicorn(url: str, workers: int, threads: int) -> tuple[subprocess.Popen[bytes], int]:
    """gunicorn as ``tessera serve`` runs it, gthread kept alive between requests, without
    the access log (a line per request to a pipe nobody reads)."""
    from tessera.backoffice.management.commands.serve import gunicorn_argv

    port = free_port()
    argv = gunicorn_argv("127.0.0.1", port, workers, threads)
    at = argv.index("--access-logfile")
    del argv[at : at + 2]
    argv += ["--worker-class", "gthread", "--keep-alive", "30", "--log-level", "warning"]
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "bench", "TESSERA_LOG_LEVEL": "WARNING",
           "EMAIL_URL": "dummy://", "PYTHONPATH": str(ROOT / "src"),
           # Plain http on loopback, one client firing far past the production rate limits.
           "TESSERA_HTTPS": "0", "TESSERA_SECURE_COOKIES": "0",
           "TESSERA_API_AUTH_FAILURE_RATE": "1000000/m", "TESSERA_CHECKOUT_RATE": "1000000/m",
           "TESSERA_CHECKOUT_RATE_PER_CLIENT": "1000000/m"}  # fmt: skip
    proc = subprocess.Popen(argv, env=env, start_new_session=True, stdout=subprocess.DEVNULL)
    children.append(proc)
    wait_port(port, proc, "gunicorn")
    return proc, port


@dataclass
class Queries:
    per_request: float
    kinds: Counter[str]
    slowest: list[tuple[float, str]]  # (ms, SQL) of the page's slowest statements, last run
    total_ms: float  # the statements' time in-process, last run


def count_queries(page: Page, user: Any, warm: int = 2, n: int = 3) -> Queries:
    from django.db import connection, connections
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client()
    if user is not None:
        client.force_login(user)
    counts, kinds = [], Counter[str]()
    slowest: list[tuple[float, str]] = []
    total = 0.0
    durations: list[float] = []

    def timer(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            durations.append((time.perf_counter() - t0) * 1000)

    for k in range(warm + n * len(page.paths)):
        path = page.paths[k % len(page.paths)]
        durations.clear()
        with CaptureQueriesContext(connection) as ctx, connection.execute_wrapper(timer):
            r = client.get(path)
        if r.status_code != 200:
            raise RuntimeError(f"in-process {path}: {r.status_code} {r.content[:300]!r}")
        if k >= warm:
            # Timed to the microsecond by the wrapper (the capture keeps milliseconds only).
            captured = ctx.captured_queries
            ms = durations if len(durations) == len(captured) else [
                float(q["time"]) * 1000 for q in captured]  # fmt: skip
            sql = [(t, q["sql"]) for t, q in zip(ms, captured, strict=True)
                   if not SKIP_SQL.match(q["sql"])]  # fmt: skip
            counts.append(len(sql))
            kinds.update(q.split(None, 1)[0].upper() for _, q in sql)
            timed = sorted(sql, reverse=True)
            slowest, total = timed[:3], sum(t for t, _ in timed)
    connections.close_all()
    runs = len(counts)
    return Queries(sum(counts) / runs, Counter({k: v / runs for k, v in kinds.items()}), slowest,
                   total)  # fmt: skip


def explain(sql: str) -> str:
    from django.db import connection, connections

    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        plan = "\n".join(r[0] for r in cursor.fetchall())
    connections.close_all()
    return plan


# --- report --------------------------------------------------------------------------------


def report(rows: list[Row], queries: dict[str, Queries], seeded: dict[str, Any], setup: str,
           plan: str, verified: str) -> None:  # fmt: skip
    times, counts = seeded["times"], seeded["counts"]
    total = sum(counts)
    print(f"\n## Portal server time ({os.cpu_count()} cores; {setup})\n")
    if times is None:
        times = {"total": float("nan"), "setup": 0, "plan": 0, "copy": 0, "events": 0, "vacuum": 0}
        print(f"(--reuse: the database {BENCH_DB} as the last run left it, with any change "
              "made to it since; the seeding times below are not measured)")  # fmt: skip
    print(f"{total:,} wallet movements over {len(counts):,} members (the measured member "
          f"{counts[0]:,}; the others {min(counts[1:]):,} to {max(counts[1:]):,}), "
          f"{seeded['refused']:,} refused orders; seeded in {times['total']:.0f} s (setup "
          f"{times['setup']:.0f}, simulation {times['plan']:.0f}, COPY {times['copy']:.0f}, "
          f"events {times['events']:.0f}, VACUUM ANALYZE {times['vacuum']:.0f}).")  # fmt: skip
    print("Rows: " + ", ".join(f"{k} {v:,}" for k, v in seeded["rows"].items()) + f". {verified}\n")
    print(
        "| page | clients | req/s | p50 / p95 / p99 ms | errors | queries | "
        "CPU per request, Python + PostgreSQL ms (+ clients, + rest of host) | target |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        res = r.result
        errs = ", ".join(f"{k}: {v}" for k, v in sorted(r.errors.items())) or "0"
        q = queries.get(r.page.label)
        cpu = r.cpu_ms
        print(f"| {r.page.label} | {r.clients} | {res.rate:,.1f} | {res.pct(50):,.0f} / "
              f"{res.pct(95):,.0f} / {res.pct(99):,.0f} | {errs} | "
              f"{f'{q.per_request:.1f}' if q else '0'} | {cpu['python']:.2f} + {cpu['postgres']:.2f}"
              f" (+ {cpu['client']:.2f}, + {r.other_ms:.2f}) | {r.verdict} |")  # fmt: skip
    print()
    for label, q in queries.items():
        kinds = ", ".join(f"{k} {v:.1f}" for k, v in q.kinds.most_common())
        print(f"Queries, {label}: {q.per_request:.1f} per request ({kinds}); their time in-process "
              f"{q.total_ms:.1f} ms; slowest:")  # fmt: skip
        for ms, sql in q.slowest:
            print(f"    {ms:7.2f} ms  {sql[:300]}{' …' if len(sql) > 300 else ''}")
    if plan:
        print("\nEXPLAIN (ANALYZE, BUFFERS) of the dashboard's slowest statement:\n" + plan)
    summary = [{"page": r.page.label, "clients": r.clients, "per_s": round(r.result.rate, 1),
                "requests": r.result.orders, **{f"p{p}_ms": round(r.result.pct(p), 1)
                                                for p in (50, 95, 99)},
                "errors": dict(r.errors), "cpu_ms": {g: round(v, 2) for g, v in r.cpu_ms.items()},
                "target": r.verdict} for r in rows]  # fmt: skip
    print(json.dumps({"results": summary, "queries": {k: q.per_request for k, q in queries.items()},
                      "seed_s": round(times["total"], 1), "movements": total}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--movements", type=int, default=1_000_000)
    parser.add_argument("--member-movements", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--warm-seconds", type=float, default=5,
                        help="seconds of the same requests before each row, not counted")  # fmt: skip
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--db", choices=["postgres"], default="postgres")
    parser.add_argument("--gunicorn-workers", type=int, default=4)
    parser.add_argument("--gunicorn-threads", type=int, default=4)
    parser.add_argument("--pages", default="home,wallet,wallet-chart,staff,staff-charts,static",
                        help="the rows to run, in this order")  # fmt: skip
    parser.add_argument("--verify", action="store_true", help="run `ledger verify` after seeding")
    parser.add_argument("--reuse", action="store_true",
                        help="measure the database the last run left, as it is now (no seeding)")  # fmt: skip
    parser.add_argument("--keep", action="store_true",
                        help="stop after seeding and counting: leave the database for EXPLAIN")  # fmt: skip
    args = parser.parse_args()
    if not 0 < args.member_movements <= args.movements:
        parser.error("--member-movements must be between 1 and --movements")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    atexit.register(stop_all)

    if args.reuse:
        url = db_url(BENCH_DB)
        setup_django(url)
        seeded = reused()
    else:
        url = recreate(BENCH_DB)
        setup_django(url)
        print(f"Seeding {BENCH_DB}: {args.movements:,} movements, {args.member_movements:,} of "
              f"them the measured member's …", flush=True)  # fmt: skip
        seeded = seed(args.movements, args.member_movements)
        print(f"Seeded in {seeded['times']['total']:.0f} s", flush=True)
    verified = ""
    if args.verify:
        from tessera.ledger.services import verify

        t0 = time.perf_counter()
        ledger = verify()
        verified = (f"ledger verify: {'OK' if ledger.ok else 'FAILED'} ({ledger.accounts:,} "
                    f"accounts, {ledger.entries:,} entries, {time.perf_counter() - t0:.0f} s)")  # fmt: skip
        print(verified, flush=True)
    ada, staff = seeded["ada_user"], seeded["staff"]
    member_cookie, staff_cookie = session_cookie(ada), session_cookie(staff)
    pages = {
        "home": Page("member home /", ["/"], member_cookie, 50),
        "wallet": Page("member wallet /wallet", ["/wallet"], member_cookie, 50),
        "wallet-chart": Page("wallet chart /wallet/chart.svg", ["/wallet/chart.svg"], member_cookie),
        "staff": Page("staff dashboard /staff/", ["/staff/"], staff_cookie, 300),
        "staff-charts": Page("staff charts /staff/charts/*.svg (6 in turn)",
                             [f"/staff/charts/{n}.svg" for n in STAFF_CHARTS], staff_cookie),
        "static": Page(f"ceiling: static file {STATIC}", [STATIC], ""),
    }  # fmt: skip
    chosen = [pages[p] for p in args.pages.split(",") if p]
    users = {member_cookie: ada, staff_cookie: staff, "": None}
    queries = {p.label: count_queries(p, users[p.cookie]) for p in chosen if p.cookie}
    plan = ""
    if (dash := queries.get(pages["staff"].label)) and dash.slowest:
        plan = explain(dash.slowest[0][1])
    if args.keep:
        report([], queries, seeded, "seed only", plan, verified)
        return

    rows: list[Row] = []
    try:
        gunicorn, port = start_gunicorn(url, args.gunicorn_workers, args.gunicorn_threads)
        with admin_conn() as conn:
            cpu = PortalCpu(conn, gunicorn)
            # Every gunicorn thread's connection, its prepared statements, the templates:
            # all the pages in turn from 16 clients, not counted.
            for page in chosen:
                measure(Page("warm-up", page.paths, page.cookie), port, 16, args.warm_seconds, cpu)
            for page in chosen:
                print(f"{page.label}, {args.clients} clients …", flush=True)
                measure(page, port, args.clients, args.warm_seconds, cpu)  # warm-up, not counted
                rows.append(measure(page, port, args.clients, args.seconds, cpu))
    finally:
        stop_all()
    setup = (f"gunicorn {args.gunicorn_workers}x{args.gunicorn_threads} gthread; "
             f"{args.seconds:g} s per row after {args.warm_seconds:g} s of warm-up")  # fmt: skip
    report(rows, queries, seeded, setup, plan, verified)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted; gunicorn is stopped")
