"""Events checkout throughput over HTTP on PostgreSQL, next to ceilings measured in the run.

    .venv/bin/python bench/checkout.py [--clients 8,16] [--seconds 15] [--paths free,points,card]

Checkouts (``POST /api/v1/events/{id}/checkout``) of one ticket each, every client into ONE
hot event and ONE hot item with no capacity limit, each by a new buyer (a distinct name and
email, so person resolution runs and creates a contact) with its own ``Idempotency-Key``:
- free: a ticket at 0;
- points: paid from the wallet, each client its own funded member (no shared wallet row);
- card: paid through localstripe, one fresh PaymentMethod (4242...) per checkout, made up
  front. localstripe pickles its whole store on every write, so each card run, and its
  ceiling, gets a fresh emulator holding the same number of PaymentMethods.
Over gunicorn started as bench/wallet.py starts it (no worker unless ``--worker``).

Per row: checkouts/s, p50/p95/p99, errors by status (every non-201 is printed), and CPU per
request from /proc: gunicorn (master and workers, and the worker with ``--worker``),
PostgreSQL (the backends connected to the bench database), localstripe, this process (the
clients), and anything else the host ran meanwhile (a shared VM's other load). Ceiling
rows: a static page, the wallet read, and localstripe alone making the calls a card
checkout makes (customer, attach, PaymentIntent confirmed) from as many threads. Queries per checkout are counted once per path in-process (Django's test client
through the same middleware, CaptureQueriesContext, autocommit, no test transaction),
without BEGIN/COMMIT/SAVEPOINT/RELEASE/ROLLBACK. It asserts nothing; it measures.
"""

from __future__ import annotations

import argparse
import atexit
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.wallet import (  # noqa: E402
    Result,
    admin_conn,
    backend_cpu_seconds,
    free_port,
    recreate,
    run_clients,
    setup_django,
    start_gunicorn,
)

from tests.support.stack import wait_port  # noqa: E402

BENCH_DB = "tessera_bench_checkout"
STRIPE_KEY = "sk_test_tessera_bench"
TICKET_PRICE = 2500  # EUR cents; 2,500 points at 100 points per euro
TARGET_RATE, TARGET_P99 = 150.0, 300.0
SKIP_SQL = re.compile(r"^\s*(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b", re.I)
CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"}
Request = tuple[str, str | None, str | None]  # path, JSON body (None: GET), Idempotency-Key
Maker = Callable[[int, Counter[str]], Callable[[], bool]]  # client i, its error counts -> call

children: list[subprocess.Popen[bytes]] = []
stopping = threading.Event()  # set on the way out: client threads still running stay quiet


def stop_all() -> None:
    stopping.set()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the cleanup
    for proc in children:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
    for proc in children:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    children.clear()


class LocalStripe:
    """localstripe on a fixed port (gunicorn's STRIPE_API_BASE), restarted empty on demand."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = Path(tempfile.mkdtemp(prefix="bench-localstripe-")) / "state.pickle"
        self.proc: subprocess.Popen[bytes] | None = None

    def restart(self) -> None:
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
            children.remove(self.proc)
        self.state.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tessera.billing.localstripe_server", "--port", str(self.port),
             "--state", str(self.state)],
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")}, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        children.append(self.proc)
        wait_port(self.port, self.proc, "localstripe")

    def client(self):  # type: ignore[no-untyped-def]
        import stripe

        return stripe.StripeClient(STRIPE_KEY, base_addresses={"api": self.url})

    def fresh_pool(self, n: int) -> CardPool:
        """A new empty emulator and ``n`` PaymentMethods on it, as Stripe.js would make."""
        self.restart()
        client = self.client()
        ids = [client.v1.payment_methods.create(params={"type": "card", "card": CARD})["id"]
               for _ in range(n)]  # fmt: skip
        return CardPool(ids)


@dataclass
class CardPool:
    ids: list[str]
    used: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> str | None:
        with self.lock:
            if self.used >= len(self.ids):
                return None
            self.used += 1
            return self.ids[self.used - 1]


def name_pool(n: int = 5000) -> list[tuple[str, str]]:
    from faker import Faker

    fake = Faker(["en_US", "de_DE", "fr_FR", "en_GB"])
    fake.seed_instance(1)
    return [(fake.first_name(), fake.last_name()) for _ in range(n)]


def seed(clients: int) -> dict[str, object]:
    from django.db import connections
    from django.utils import timezone

    from tessera.core.apikeys import create_api_key
    from tessera.crm.models import Contact
    from tessera.events import services
    from tessera.loyalty.adjustments import adjust_points
    from tessera.loyalty.programs import ProgramSpec, create_program, enroll_member

    program = create_program(ProgramSpec(**{"name": "Bench Rewards", "points_per_unit": 100,
                              "currency": "EUR", "low_balance_threshold": 0}))  # fmt: skip
    start = timezone.now() + timedelta(days=30)
    event = services.create_event(services.EventSpec(
        name="Bench Summit", starts_at=start, ends_at=start + timedelta(hours=8),
        timezone="Europe/Berlin", currency="EUR", capacity=None, program_id=program.pk,
    ))  # fmt: skip
    free = services.add_item(event.pk, services.ItemSpec(name="Community pass", kind="ticket",
                                                         price=0))  # fmt: skip
    paid = services.add_item(event.pk, services.ItemSpec(
        name="General admission", kind="ticket", price=TICKET_PRICE, tax_rate_bp=1900))  # fmt: skip
    members = []
    for i in range(clients + 1):  # one per client, and one for the in-process count
        contact = Contact.objects.create(first_name=f"Wallet{i}", last_name="Holder",
                                         email=f"wallet{i}@bench.test")  # fmt: skip
        member, _ = enroll_member(program.pk, contact_id=contact.pk)
        adjust_points(member.pk, points=10_000_000, reason="bench balance")
        members.append(member.pk)
    _, key = create_api_key("bench", ["admin"])
    connections.close_all()
    return {"event": event.pk, "free": free.pk, "paid": paid.pk, "members": members, "key": key}


def checkout_requests(
    path: str, tag: str, setup: dict, names: list[tuple[str, str]], pool: CardPool | None
) -> Callable[[int, int], Request]:
    """Client ``i``'s ``n``th checkout: a new person, one ticket, its own Idempotency-Key."""
    members: list[str] = setup["members"]  # type: ignore[assignment]
    item = setup["free" if path == "free" else "paid"]

    def request(i: int, n: int) -> Request:
        first, last = names[(i * 7919 + n * 104729) % len(names)]
        local = re.sub(r"[^a-z0-9]+", "", f"{first}.{last}".lower()) or "guest"
        person = {"first_name": first, "last_name": last,
                  "email": f"{local}.{tag}.{i}.{n}@example.org"}  # fmt: skip
        payment: dict[str, str] | None = None
        if path == "points":
            payment = {"method": "wallet", "member_id": members[i % len(members)]}
        elif path == "card":
            pm = pool.take() if pool else None
            if pm is None:
                raise LookupError("card pool exhausted")
            payment = {"method": "card", "payment_method_id": pm}
        body = {"buyer": person, "attendees": [{**person, "items": [{"item_id": item}]}],
                "payment": payment}  # fmt: skip
        return f"/api/v1/events/{setup['event']}/checkout", json.dumps(body), f"{tag}-{i}-{n}"

    return request


@dataclass
class Row:
    label: str
    clients: int
    result: Result
    errors: Counter[str]
    cpu_ms: dict[str, float]  # per successful request: python, postgres, localstripe, client
    target: bool = False  # a row the target is set for

    @property
    def other_ms(self) -> float:
        """The host's CPU per request beyond the processes measured: other load on the VM."""
        return self.cpu_ms["host"] - sum(v for g, v in self.cpu_ms.items() if g != "host")

    @property
    def meets(self) -> bool:
        r = self.result
        return r.rate >= TARGET_RATE and r.pct(99) <= TARGET_P99 and not self.errors


def host_busy_seconds() -> float:
    """The machine's busy CPU time (user, nice, system, irq, softirq, steal), all cores."""
    user, nice, system, _idle, _io, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


class Cpu:
    """CPU seconds from /proc of the processes each part of the system runs in."""

    def __init__(self, conn, gunicorn: subprocess.Popen[bytes], worker, stripe: LocalStripe):  # type: ignore[no-untyped-def]
        self.conn, self.gunicorn, self.worker, self.stripe = conn, gunicorn, worker, stripe

    @staticmethod
    def tree(pid: int) -> list[int]:
        found = [pid]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(stat.parent.name))
            except (OSError, ValueError, IndexError):
                continue
        return found

    def snapshot(self) -> dict[str, dict[int, float]]:
        py = self.tree(self.gunicorn.pid) + (self.tree(self.worker.pid) if self.worker else [])
        pg = [r[0] for r in self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (BENCH_DB,))]  # fmt: skip
        st = self.tree(self.stripe.proc.pid) if self.stripe.proc else []
        return {
            "python": {p: backend_cpu_seconds(p) or 0.0 for p in py},
            "postgres": {p: backend_cpu_seconds(p) or 0.0 for p in pg},
            "localstripe": {p: backend_cpu_seconds(p) or 0.0 for p in st},
            "client": {0: time.process_time()},
            "host": {0: host_busy_seconds()},  # every process on the machine
        }

    @staticmethod
    def per_request(before: dict, after: dict, n: int) -> dict[str, float]:
        return {g: sum(max(0.0, cpu - before[g].get(p, 0.0)) for p, cpu in after[g].items())
                * 1000 / max(n, 1) for g in after}  # fmt: skip


def measure(label: str, clients: int, seconds: float, cpu: Cpu, make: Maker) -> Row:
    errors: Counter[str] = Counter()
    before = cpu.snapshot()
    count, elapsed, lat = run_clients(clients, seconds, lambda i: make(i, errors))
    after = cpu.snapshot()
    return Row(label, clients, Result(label, clients, count, elapsed, lat), errors,
               Cpu.per_request(before, after, count))  # fmt: skip


printed = Counter[str]()


def report_error(label: str, what: str, detail: str, errors: Counter[str]) -> None:
    errors[what] += 1
    printed[label] += 1
    if stopping.is_set():
        return
    if printed[label] <= 20:
        print(f"  ! {label}: {what} {detail[:400]}", flush=True)
    elif printed[label] == 21:
        print(f"  ! {label}: further errors counted, not printed", flush=True)


def http_maker(label: str, port: int, key: str, request_for: Callable[[int, int], Request],
               expect: int) -> Maker:  # fmt: skip
    def make(i: int, errors: Counter[str]) -> Callable[[], bool]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        n = 0

        def call() -> bool:
            nonlocal n, conn
            n += 1
            try:
                path, body, idem = request_for(i, n)
            except LookupError as exc:
                report_error(label, "no request", str(exc), errors)
                time.sleep(1)
                return False
            headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
            if idem:
                headers["Idempotency-Key"] = idem
            try:
                conn.request("POST" if body else "GET", path, body, headers)
                resp = conn.getresponse()
                data = resp.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                report_error(label, type(exc).__name__, str(exc), errors)
                return False
            if resp.status != expect:
                report_error(label, str(resp.status), data.decode(errors="replace"), errors)
                return False
            return True

        return call

    return make


def stripe_maker(label: str, stripe: LocalStripe, pool: CardPool, tag: str) -> Maker:
    """The calls Tessera makes for one card checkout, straight to localstripe."""

    def make(i: int, errors: Counter[str]) -> Callable[[], bool]:
        client, n = stripe.client(), 0

        def call() -> bool:
            nonlocal n
            n += 1
            pm = pool.take()
            if pm is None:
                report_error(label, "no request", "card pool exhausted", errors)
                time.sleep(1)
                return False
            try:
                customer = client.v1.customers.create(
                    params={"email": f"c.{tag}.{i}.{n}@example.org", "name": "Bench Buyer"},
                    options={"idempotency_key": f"cus-{tag}-{i}-{n}"})  # fmt: skip
                client.v1.payment_methods.attach(pm, params={"customer": customer.id})
                pi = client.v1.payment_intents.create(params={
                    "amount": TICKET_PRICE, "currency": "eur", "customer": customer.id,
                    "payment_method": pm, "confirm": True, "capture_method": "automatic",
                    "metadata": {"tessera_transaction": f"txn_{tag}_{i}_{n}"},
                    "payment_method_types": ["card"]},
                    options={"idempotency_key": f"pi-{tag}-{i}-{n}"})  # fmt: skip
            except Exception as exc:  # counted and printed
                report_error(label, type(exc).__name__, str(exc), errors)
                return False
            if pi.status != "succeeded":
                report_error(label, f"status {pi.status}", pi.id, errors)
                return False
            return True

        return call

    return make


def count_queries(key: str, request_for: Callable[[int, int], Request], expect: int,
                  warm: int = 3, n: int = 5) -> tuple[float, Counter[str]]:  # fmt: skip
    """Queries per request in-process, through the middleware and the view."""
    from django.db import connection, connections
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client, counts, kinds = Client(HTTP_HOST="127.0.0.1"), [], Counter[str]()
    for k in range(warm + n):
        path, body, idem = request_for(len(counts) + 10_000, k)
        headers = {"Authorization": f"Bearer {key}", **({"Idempotency-Key": idem} if idem else {})}
        with CaptureQueriesContext(connection) as ctx:
            if body:
                r = client.post(path, body, content_type="application/json", headers=headers)
            else:
                r = client.get(path, headers=headers)
        if r.status_code != expect:
            raise RuntimeError(f"in-process {path}: {r.status_code} {r.content[:400]!r}")
        if k >= warm:
            sql = [q["sql"] for q in ctx.captured_queries if not SKIP_SQL.match(q["sql"])]
            counts.append(len(sql))
            kinds.update(s.split(None, 1)[0].upper() for s in sql)
    connections.close_all()
    return sum(counts) / n, Counter({k: v / n for k, v in kinds.items()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--clients", default="8,16")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--paths", default="free,points,card")
    parser.add_argument("--db", choices=["postgres"], default="postgres")
    parser.add_argument("--gunicorn-workers", type=int, default=4)
    parser.add_argument("--gunicorn-threads", type=int, default=4)
    parser.add_argument("--worker", action="store_true", help="also run `tessera worker`")
    parser.add_argument("--warm-seconds", type=float, default=10,
                        help="seconds of the same checkouts at full load before each row")  # fmt: skip
    parser.add_argument("--card-pool", type=int, default=0,
                        help="PaymentMethods per card run (default 30 per second of run and warm-up)")  # fmt: skip
    args = parser.parse_args()
    client_counts = [int(c) for c in args.clients.split(",")]
    paths = [p for p in args.paths.split(",") if p]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    atexit.register(stop_all)
    stripe = LocalStripe()
    os.environ.update(STRIPE_API_BASE=stripe.url, STRIPE_SECRET_KEY=STRIPE_KEY,
                      STRIPE_WEBHOOK_SECRET="whsec_bench")  # fmt: skip
    stripe.restart()
    url = recreate(BENCH_DB)
    setup_django(url)
    print(f"Seeding {BENCH_DB}: one event, two items, {max(client_counts)} funded members …")
    setup = seed(max(client_counts))
    key: str = setup["key"]  # type: ignore[assignment]
    members: list[str] = setup["members"]  # type: ignore[assignment]
    names = name_pool()
    warm_s = args.warm_seconds
    pool_size = args.card_pool or int((args.seconds + warm_s) * 30)

    queries: dict[str, tuple[float, Counter[str]]] = {}
    for path in paths:
        pool = stripe.fresh_pool(10) if path == "card" else None
        queries[path] = count_queries(key, checkout_requests(path, f"q{path}", setup, names, pool), 201)  # fmt: skip
    wallet_read = lambda i, n: (f"/api/v1/members/{members[i % len(members)]}/wallet", None, None)  # noqa: E731
    queries["wallet read"] = count_queries(key, wallet_read, 200)

    rows: list[Row] = []
    worker = None
    try:
        gunicorn, port = start_gunicorn(url, args.gunicorn_workers, args.gunicorn_threads)
        children.append(gunicorn)
        if args.worker:
            worker = subprocess.Popen([sys.executable, "-m", "tessera.cli", "worker"],
                                      env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
                                      start_new_session=True)  # fmt: skip
            children.append(worker)
        with admin_conn() as conn:
            cpu = Cpu(conn, gunicorn, worker, stripe)

            def run(label: str, c: int, make: Maker) -> Row:
                print(f"{label}, {c} clients …", flush=True)
                rows.append(measure(label, c, args.seconds, cpu, make))
                return rows[-1]

            for path in paths:
                for c in client_counts:
                    tag, label = f"{path}{c}", f"checkout, {path}"
                    pool = stripe.fresh_pool(pool_size) if path == "card" else None
                    warm = checkout_requests(path, f"w{tag}", setup, names, pool)
                    # every gunicorn thread's connection and prepared statements, not counted
                    measure(label, max(client_counts), warm_s, cpu, http_maker(f"{label} warm-up", port, key, warm, 201))  # fmt: skip
                    make = http_maker(label, port, key, checkout_requests(path, tag, setup, names, pool), 201)  # fmt: skip
                    run(label, c, make).target = path in ("free", "points") and c == 16
                    if pool and pool.used >= len(pool.ids):
                        print(f"!! the card pool of {len(pool.ids)} ran out: raise --card-pool")
            for c in client_counts:
                run("ceiling: static page, no database", c,
                    http_maker("static", port, key, lambda i, n: ("/", None, None), 200))  # fmt: skip
                run("ceiling: wallet read (GET …/wallet)", c,
                    http_maker("wallet read", port, key, wallet_read, 200))  # fmt: skip
                if "card" in paths:
                    pool = stripe.fresh_pool(pool_size)
                    run("ceiling: localstripe alone, a card checkout's 3 calls", c,
                        stripe_maker("localstripe", stripe, pool, f"ls{c}"))  # fmt: skip
    finally:
        stop_all()
    report(rows, queries, f"gunicorn {args.gunicorn_workers}x{args.gunicorn_threads} gthread"
           f"{', tessera worker' if worker else ', no worker'}; {args.seconds:g} s per row")  # fmt: skip


def report(rows: list[Row], queries: dict[str, tuple[float, Counter[str]]], setup: str) -> None:
    from django.db.models import Count
    from django_tasks_db.models import DBTaskResult
    from rich.console import Console
    from rich.table import Table

    from tessera.crm.models import Contact
    from tessera.events.models import Checkout
    from tessera.ledger.services import verify

    console = Console(width=220)
    table = Table(title=f"Events checkout over HTTP on PostgreSQL ({os.cpu_count()} cores; {setup})")  # fmt: skip
    cols = ["path", "clients", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "CPU/req ms: Python",
            "PostgreSQL", "localstripe", "bench clients", "anything else", ">=150/s, p99<=300"]  # fmt: skip
    for col in cols:
        table.add_column(col, justify="left" if col == "path" else "right")
    groups = ("python", "postgres", "localstripe", "client")
    for r in rows:
        res, errs = r.result, ", ".join(f"{k}: {v}" for k, v in sorted(r.errors.items())) or "0"
        table.add_row(r.label, str(r.clients), f"{res.rate:,.1f}", f"{res.pct(50):.0f}", f"{res.pct(95):.0f}",
                      f"{res.pct(99):.0f}", errs, *(f"{r.cpu_ms[g]:.2f}" for g in groups), f"{r.other_ms:.2f}",
                      ("YES" if r.meets else "NO") + ("" if r.target else " (no target)"))  # fmt: skip
    console.print(table)
    busy = [
        f"{r.label} ({r.clients})"
        for r in rows
        if r.other_ms > 0.25 * (r.cpu_ms["host"] - r.other_ms)
    ]
    if busy:  # fmt: skip
        console.print(
            f"!! other work on this host took over a fifth of its CPU during: {', '.join(busy)}"
        )
    verdicts = ", ".join(
        f"{r.label} at 16: {'met' if r.meets else 'MISSED'}" for r in rows if r.target
    )
    console.print(f"Target: free and points checkouts >= {TARGET_RATE:.0f}/s at 16 clients with p99 <= "
                  f"{TARGET_P99:.0f} ms and no errors: {verdicts or 'no target row run'}")  # fmt: skip
    for path, (q, kinds) in queries.items():
        console.print(f"Queries per request, {path} (in-process, CaptureQueriesContext, without BEGIN/COMMIT/"
                      f"SAVEPOINT/RELEASE): {q:.1f}: " + ", ".join(f"{k} {v:.1f}" for k, v in kinds.most_common()))  # fmt: skip
    statuses = dict(Checkout.objects.values_list("status").annotate(n=Count("id")).order_by())
    queued = DBTaskResult.objects.filter(status="READY").count()
    console.print(f"Checkouts by status: {statuses}; contacts: {Contact.objects.count():,}; "
                  f"confirmation jobs left queued: {queued:,}")  # fmt: skip
    ledger = verify()
    console.print(f"ledger verify: {'OK' if ledger.ok else 'FAILED'} ({ledger.accounts} accounts, {ledger.entries} entries)")  # fmt: skip
    summary = [{"path": r.label, "clients": r.clients, "per_s": round(r.result.rate, 1),
                "requests": r.result.orders, **{f"p{p}_ms": round(r.result.pct(p), 1) for p in (50, 95, 99)},
                "errors": dict(r.errors), "cpu_ms": {g: round(v, 2) for g, v in r.cpu_ms.items()},
                "meets_target": r.meets, "target_row": r.target} for r in rows]  # fmt: skip
    print(json.dumps({"results": summary, "queries": {p: q for p, (q, _) in queries.items()},
                      "statuses": statuses, "ledger_ok": ledger.ok}))  # fmt: skip


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted; gunicorn, localstripe and the worker are stopped")
