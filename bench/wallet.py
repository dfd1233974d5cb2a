"""Wallet order throughput on PostgreSQL, next to pgbench measured on the same server.

    .venv/bin/python bench/wallet.py [--clients 8,16] [--seconds 15] [--gunicorn-workers 4]

Places orders (one unlimited-stock product, 1 point each, so no wallet ever runs dry):
- on distinct members (each client its own members: no lock contention) and on one hot
  member (every client the same wallet row: all orders serialise on its lock);
- in-process through the service (``place_order``) and over HTTP (gunicorn, N workers,
  keep-alive clients);
with 8 and 16 concurrent clients. Prints orders/s and p50/p95/p99 latency, and pgbench's
TPC-B tps with the same number of clients, with the ratio. Two ceiling rows put the HTTP
figures in proportion: the same clients on a static page (Django and gunicorn only) and on
the lightest authenticated API read (the wallet). It is a benchmark, not a test:
it asserts nothing, it only measures (and checks `ledger verify` at the end).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dj_database_url
import psycopg

ROOT = Path(__file__).resolve().parent.parent
BASE_URL = os.environ.get("TESSERA_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
BENCH_DB = "tessera_bench_wallet"
PGBENCH_DB = "tessera_pgbench"


def admin_conn() -> psycopg.Connection:
    cfg = dj_database_url.parse(BASE_URL)
    return psycopg.connect(
        host=cfg["HOST"] or "127.0.0.1", port=int(cfg["PORT"] or 5432),
        user=cfg["USER"] or "postgres", dbname="postgres", autocommit=True,
    )  # fmt: skip


def recreate(name: str) -> str:
    with admin_conn() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return db_url(name)


def db_url(name: str) -> str:
    cfg = dj_database_url.parse(BASE_URL)
    return f"postgres://{cfg['USER'] or 'postgres'}@{cfg['HOST'] or '127.0.0.1'}:{cfg['PORT'] or 5432}/{name}"


@dataclass
class Result:
    label: str
    clients: int
    orders: int
    seconds: float
    latencies: list[float]

    @property
    def rate(self) -> float:
        return self.orders / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        data = sorted(self.latencies)
        return data[min(len(data) - 1, int(p / 100 * len(data)))] * 1000


def run_clients(
    clients: int, seconds: float, make_call: Callable[[int], Callable[[], bool]]
) -> tuple[int, float, list[float]]:
    """``clients`` threads calling their own function for ``seconds``; returns the count of
    successful calls, the elapsed time and every call's latency."""
    barrier = threading.Barrier(clients + 1)
    latencies: list[list[float]] = [[] for _ in range(clients)]
    stop = threading.Event()

    def worker(i: int) -> None:
        call = make_call(i)
        barrier.wait()
        mine = latencies[i]
        while not stop.is_set():
            t0 = time.perf_counter()
            ok = call()
            if ok:
                mine.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    elapsed = time.perf_counter() - start
    flat = [x for lat in latencies for x in lat]
    return len(flat), elapsed, flat


def setup_django(db_url: str) -> None:
    os.environ.update(
        DATABASE_URL=db_url, SECRET_KEY="bench", DJANGO_SETTINGS_MODULE="tessera.settings",
        TESSERA_LOG_LEVEL="WARNING", EMAIL_URL="dummy://",
    )  # fmt: skip
    sys.path.insert(0, str(ROOT / "src"))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def seed(members: int) -> tuple[list[str], str, str, str]:
    from tessera.core.apikeys import create_api_key
    from tessera.crm.models import Contact
    from tessera.loyalty.adjustments import adjust_points
    from tessera.loyalty.ordering import ProductSpec, create_product
    from tessera.loyalty.programs import ProgramSpec, create_program, enroll_member

    program = create_program(
        ProgramSpec(name="Bench", points_per_unit=100, currency="USD", low_balance_threshold=0)
    )
    product = create_product(ProductSpec(program_id=program.pk, name="Sticker", price_points=1))
    ids = []
    for i in range(members + 1):
        contact = Contact.objects.create(
            first_name=f"M{i}", last_name="Bench", email=f"m{i}@bench.test"
        )
        member, _ = enroll_member(program.pk, contact_id=contact.pk)
        adjust_points(member.pk, points=10_000_000, reason="bench balance")
        ids.append(member.pk)
    _, key = create_api_key("bench", ["admin"])
    return ids[:-1], ids[-1], product.pk, key


def in_process(
    label: str, clients: int, seconds: float, member_for: Callable[[int, int], str], product: str
) -> Result:
    from django.db import connections

    from tessera.loyalty.ordering import OrderLineSpec, place_order

    def make(i: int) -> Callable[[], bool]:
        n = 0

        def call() -> bool:
            nonlocal n
            n += 1
            place_order(member_for(i, n), [OrderLineSpec(product, 1)])
            return True

        return call

    count, elapsed, lat = run_clients(clients, seconds, make)
    connections.close_all()
    return Result(label, clients, count, elapsed, lat)


def backend_cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of one PostgreSQL backend process, from /proc (so the
    server must run on this host)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_per_order(members: list[str], product: str, orders: int) -> tuple[float, float] | None:
    """(PostgreSQL CPU ms, Python CPU ms) per order, one client placing ``orders`` in turn:
    where an order's cost goes, whatever the concurrency."""
    from django.db import connection, connections

    from tessera.loyalty.ordering import OrderLineSpec, place_order

    def place(i: int) -> None:
        place_order(members[i % len(members)], [OrderLineSpec(product, 1)])

    for i in range(50):  # warm the connection's prepared statements
        place(i)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = int(cursor.fetchone()[0])
    pg_before, py_before = backend_cpu_seconds(pid), time.process_time()
    for i in range(orders):
        place(i)
    pg_after, py_after = backend_cpu_seconds(pid), time.process_time()
    connections.close_all()
    if pg_before is None or pg_after is None:
        return None
    return (pg_after - pg_before) * 1000 / orders, (py_after - py_before) * 1000 / orders


def tpcb_cpu_per_transaction(transactions: int) -> float | None:
    """PostgreSQL CPU ms per TPC-B transaction: pgbench's script, one client, measured on
    its backend like ``cpu_per_order`` (pgbench's own backends exit before they can be
    read)."""
    rng = random.Random(1)
    cfg = dj_database_url.parse(db_url(PGBENCH_DB))
    with psycopg.connect(
        host=cfg["HOST"], port=int(cfg["PORT"]), user=cfg["USER"], dbname=cfg["NAME"],
        autocommit=True,
    ) as conn:  # fmt: skip
        pid = int(conn.execute("SELECT pg_backend_pid()").fetchone()[0])  # type: ignore[index]
        before = backend_cpu_seconds(pid)
        for _ in range(transactions):
            aid, tid, bid = rng.randint(1, 1_000_000), rng.randint(1, 100), rng.randint(1, 10)
            delta = rng.randint(-5000, 5000)
            # Literal values, as pgbench's default simple protocol sends them.
            conn.execute(
                f"BEGIN;"
                f"UPDATE pgbench_accounts SET abalance = abalance + {delta} WHERE aid = {aid};"
                f"SELECT abalance FROM pgbench_accounts WHERE aid = {aid};"
                f"UPDATE pgbench_tellers SET tbalance = tbalance + {delta} WHERE tid = {tid};"
                f"UPDATE pgbench_branches SET bbalance = bbalance + {delta} WHERE bid = {bid};"
                f"INSERT INTO pgbench_history (tid, bid, aid, delta, mtime)"
                f" VALUES ({tid}, {bid}, {aid}, {delta}, CURRENT_TIMESTAMP);"
                f"END;"
            )
        after = backend_cpu_seconds(pid)
    return None if before is None or after is None else (after - before) * 1000 / transactions


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_gunicorn(db_url: str, workers: int, threads: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": db_url, "SECRET_KEY": "bench", "TESSERA_LOG_LEVEL": "WARNING",
           "EMAIL_URL": "dummy://", "PYTHONPATH": str(ROOT / "src"),
           # Plain http on loopback, one client firing far past the production rate limits.
           "TESSERA_HTTPS": "0", "TESSERA_SECURE_COOKIES": "0",
           "TESSERA_API_AUTH_FAILURE_RATE": "1000000/m", "TESSERA_CHECKOUT_RATE": "1000000/m",
           "TESSERA_CHECKOUT_RATE_PER_CLIENT": "1000000/m"}  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "tessera.wsgi:application", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread",
         "--keep-alive", "30", "--log-level", "warning"],
        env=env, start_new_session=True,
    )  # fmt: skip
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("gunicorn did not start")


def over_http(
    label: str,
    clients: int,
    seconds: float,
    port: int,
    key: str,
    member_for: Callable[[int, int], str],
    product: str,
) -> Result:
    """Orders over HTTP, one product each."""
    body = json.dumps({"lines": [{"product_id": product, "quantity": 1}]})
    return http_calls(label, clients, seconds, port, key,
                      lambda i, n: f"/api/v1/members/{member_for(i, n)}/orders", body)  # fmt: skip


def http_calls(
    label: str,
    clients: int,
    seconds: float,
    port: int,
    key: str,
    path_for: Callable[[int, int], str],
    body: str | None = None,
) -> Result:
    """``clients`` keep-alive connections each calling ``path_for(client, n)``: POST with
    ``body`` (success is 201), or GET without one (200). A GET is what the ceiling rows
    use, to show how fast the HTTP stack answers at all on this machine."""
    method, ok = ("POST", 201) if body is not None else ("GET", 200)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def make(i: int) -> Callable[[], bool]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        n = 0

        def call() -> bool:
            nonlocal n
            n += 1
            conn.request(method, path_for(i, n), body, headers)
            resp = conn.getresponse()
            resp.read()
            return resp.status == ok

        return call

    count, elapsed, lat = run_clients(clients, seconds, make)
    return Result(label, clients, count, elapsed, lat)


def pgbench(clients: int, seconds: int) -> tuple[float, float] | None:
    exe = shutil.which("pgbench") or next(
        iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"))), None
    )
    if not exe:
        return None
    cfg = dj_database_url.parse(BASE_URL)
    base = [
        str(exe),
        "-h",
        cfg["HOST"] or "127.0.0.1",
        "-p",
        str(cfg["PORT"] or 5432),
        "-U",
        cfg["USER"] or "postgres",
    ]
    out = subprocess.run(
        [*base, "-c", str(clients), "-j", "2", "-T", str(seconds), PGBENCH_DB],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))  # type: ignore[union-attr]
    latency = float(re.search(r"latency average = ([\d.]+) ms", out).group(1))  # type: ignore[union-attr]
    return tps, latency


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", default="8,16")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--members", type=int, default=64)
    parser.add_argument("--gunicorn-workers", type=int, default=4)
    parser.add_argument("--gunicorn-threads", type=int, default=4)
    args = parser.parse_args()
    client_counts = [int(c) for c in args.clients.split(",")]

    from rich.console import Console
    from rich.table import Table

    console = Console()
    db_url = recreate(BENCH_DB)
    setup_django(db_url)
    console.print(f"Seeding {args.members} members on {BENCH_DB} …")
    members, hot, product, key = seed(args.members)

    def distinct(clients: int) -> Callable[[int, int], str]:
        per = max(1, len(members) // clients)
        return lambda i, n: members[(i * per + n % per) % len(members)]

    def hot_member(i: int, n: int) -> str:
        return hot

    split = cpu_per_order(members, product, 2000)
    results: list[Result] = []
    for c in client_counts:
        results.append(
            in_process("service, distinct members", c, args.seconds, distinct(c), product)
        )
        results.append(in_process("service, one hot member", c, args.seconds, hot_member, product))
    proc, port = start_gunicorn(db_url, args.gunicorn_workers, args.gunicorn_threads)
    try:
        for c in client_counts:
            over_http("HTTP, distinct members", c, 2, port, key, distinct(c), product)  # warm-up
            results.append(
                over_http(
                    "HTTP, distinct members", c, args.seconds, port, key, distinct(c), product
                )
            )
            results.append(
                over_http("HTTP, one hot member", c, args.seconds, port, key, hot_member, product)
            )
        # Ceilings: what a request reaches here before it does an order's work.
        for c in client_counts:
            results.append(
                http_calls("HTTP ceiling: static page, no database", c, args.seconds, port, key,
                         lambda i, n: "/")
            )  # fmt: skip
            member_for = distinct(c)
            results.append(
                http_calls("HTTP ceiling: wallet read (auth + 2 reads)", c, args.seconds, port, key,
                         lambda i, n, m=member_for: f"/api/v1/members/{m(i, n)}/wallet")
            )  # fmt: skip
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)

    console.print("Running pgbench (TPC-B) on the same server …")
    recreate(PGBENCH_DB)
    cfg = dj_database_url.parse(BASE_URL)
    exe = shutil.which("pgbench") or next(
        iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"))), None
    )
    baseline: dict[int, tuple[float, float]] = {}
    if exe:
        subprocess.run([str(exe), "-h", cfg["HOST"] or "127.0.0.1", "-U", cfg["USER"] or "postgres", "-i", "-q", "-s", "10", PGBENCH_DB],
                       check=True, capture_output=True)  # fmt: skip
        for c in client_counts:
            measured = pgbench(c, int(args.seconds))
            if measured:
                baseline[c] = measured
        tpcb_cpu = tpcb_cpu_per_transaction(2000)
    else:
        tpcb_cpu = None

    from tessera.ledger.services import verify

    report = verify()
    table = Table(
        title=f"Wallet orders on PostgreSQL ({os.cpu_count()} cores; gunicorn {args.gunicorn_workers}x{args.gunicorn_threads} gthread)"
    )
    for col in (
        "path",
        "clients",
        "orders/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "pgbench tps",
        "ratio",
    ):
        table.add_column(col, justify="right" if col != "path" else "left")
    summary = []
    for r in results:
        tps = baseline.get(r.clients, (0.0, 0.0))[0]
        ratio = f"{r.rate / tps:.0%}" if tps else "n/a"
        table.add_row(r.label, str(r.clients), f"{r.rate:,.0f}", f"{r.pct(50):.1f}", f"{r.pct(95):.1f}", f"{r.pct(99):.1f}",
                      f"{tps:,.0f}" if tps else "n/a", ratio)  # fmt: skip
        summary.append({"path": r.label, "clients": r.clients, "orders_per_s": round(r.rate, 1), "p50_ms": round(r.pct(50), 2),
                        "p95_ms": round(r.pct(95), 2), "p99_ms": round(r.pct(99), 2), "pgbench_tps": round(tps, 1)})  # fmt: skip
    console.print(table)
    for c, (tps, lat) in baseline.items():
        console.print(f"pgbench TPC-B, {c} clients: {tps:,.0f} tps, mean latency {lat:.2f} ms")
    if split:
        pg_ms, py_ms = split
        console.print(
            f"CPU per order (one client, 2,000 orders): PostgreSQL {pg_ms:.2f} ms, Python {py_ms:.2f} ms"
            + (f"; PostgreSQL per TPC-B transaction: {tpcb_cpu:.2f} ms" if tpcb_cpu else "")
        )
    console.print(
        f"ledger verify: {'OK' if report.ok else 'FAILED'} ({report.accounts} accounts, {report.entries} entries)"
    )
    cpu = (
        {"order_pg_ms": round(split[0], 3), "order_python_ms": round(split[1], 3)} if split else {}
    )
    if tpcb_cpu:
        cpu["tpcb_pg_ms"] = round(tpcb_cpu, 3)
    print(json.dumps({"results": summary, "cpu_per_order": cpu, "ledger_ok": report.ok}))
    with admin_conn() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PGBENCH_DB}" WITH (FORCE)')


if __name__ == "__main__":
    main()
