"""Tessera scaled out on one machine: races across processes, and throughput by web process.

    .venv/bin/python bench/scaleout.py [--seconds 20] [--processes 1,2,4] [--clients 16]
        [--mode workers|instances] [--tasks database|rq] [--skip-races]

On one fresh PostgreSQL database (tests/support/scaleout.py: made and dropped by the run),
with localstripe, an SMTP server and two ``tessera worker``s:

(a) races, with two ``tessera serve`` instances (two gunicorn workers each) behind
    bench/balancer.py, every request on a new connection so they spread over all four
    processes: 50 checkouts at once for an item of 10 places, 40 orders at once from one
    wallet that covers 25, then every email they queued, sent by the two workers. Prints
    each outcome against what it must be.
(b) throughput of a fixed mixed workload (per client in turn: a wallet order, the wallet,
    the contact list, the member, the wallet's transactions: 1 write in 5) from
    ``--clients`` keep-alive clients for ``--seconds`` each, with 1, 2 and 4 web processes:
    gunicorn workers of one instance (``--mode workers``) or one-worker instances behind the
    balancer (``--mode instances``). Prints processes | requests/s | p50 | p95 | p99 |
    errors, and the CPU the rest of the machine used meanwhile (a shared host's load).

It asserts nothing; tests/reliability/test_scaleout_races.py asserts the races.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]
from bench.checkout import Cpu, host_busy_seconds  # noqa: E402
from bench.wallet import backend_cpu_seconds, run_clients  # noqa: E402

from tests.support.scaleout import Stack, scaled_out  # noqa: E402
from tests.support.scaleout_races import checkout_race, email_outcome, wallet_race  # noqa: E402
from tests.support.scaleout_seed import AFFORDABLE, CAPACITY  # noqa: E402

CHECKOUTS, ORDERS = 50, 40


def check(label: str, got: object, want: object) -> None:
    print(f"  {'ok ' if got == want else 'BAD'} {label}: {got} (must be {want})", flush=True)


def races(stack: Stack) -> None:
    print(f"(a) races through the balancer: 2 instances x 2 workers, "
          f"{len(stack.workers)} task workers", flush=True)  # fmt: skip
    c = checkout_race(stack, CHECKOUTS)
    check(f"{CHECKOUTS} checkouts for {CAPACITY} places", dict(c.statuses),
          {201: CAPACITY, 409: CHECKOUTS - CAPACITY})  # fmt: skip
    check("refusal codes", dict(c.codes), {"sold_out": CHECKOUTS - CAPACITY})
    check("registered attendees", c.registered, CAPACITY)
    w = wallet_race(stack, ORDERS)
    check(f"{ORDERS} orders from a wallet covering {AFFORDABLE}", dict(w.statuses),
          {201: AFFORDABLE, 402: ORDERS - AFFORDABLE})  # fmt: skip
    check("final balance", w.balance, 0)
    check("balance never negative", w.lowest_balance >= 0, True)
    check("ledger verify clean", w.ledger_clean, True)
    e = email_outcome(stack)
    check("emails queued", len(e.queued), CAPACITY + ORDERS - AFFORDABLE)
    check("emails sent", e.sent, len(e.queued))
    check("emails never delivered", e.missing, [])
    check("emails delivered twice", e.duplicates, [])
    if e.workers is not None:
        check("task workers that sent some", e.workers, len(stack.workers))


def mixed(port: int, key: str, member: str, sticker: str) -> Callable[[], bool]:
    """One client's calls in turn, on one keep-alive connection: 1 write in 5."""
    order = json.dumps({"lines": [{"product_id": sticker, "quantity": 1}]})
    calls = [("POST", f"/api/v1/members/{member}/orders", order, 201),
             ("GET", f"/api/v1/members/{member}/wallet", None, 200),
             ("GET", "/api/v1/contacts?limit=20", None, 200),
             ("GET", f"/api/v1/members/{member}", None, 200),
             ("GET", f"/api/v1/members/{member}/wallet/transactions?limit=20", None, 200)]  # fmt: skip
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    state = {"n": 0, "conn": http.client.HTTPConnection("127.0.0.1", port, timeout=60)}

    def call() -> bool:
        method, path, body, expect = calls[state["n"] % len(calls)]  # type: ignore[call-overload]
        state["n"] += 1  # type: ignore[operator]
        conn: http.client.HTTPConnection = state["conn"]  # type: ignore[assignment]
        try:
            conn.request(method, path, body, headers)
            resp = conn.getresponse()
            resp.read()
        except (OSError, http.client.HTTPException):
            conn.close()
            state["conn"] = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            return False
        return bool(resp.status == expect)

    return call


@dataclass
class Row:
    processes: int
    rate: float
    pcts: tuple[float, float, float]
    errors: int
    other_cores: float  # CPU the rest of the machine used, in cores
    cpu_ms: tuple[float, float]  # per request: Python (web, workers, clients), PostgreSQL


def our_cpu(stack: Stack) -> dict[str, dict[int, float]]:
    """CPU seconds so far of each process of the stack: Python ones, PostgreSQL backends."""
    pids = [p for proc in stack.web + stack.workers for p in Cpu.tree(proc.pid)]
    pg = [r[0] for r in stack.sql(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid()")]  # fmt: skip
    return {"python": {p: backend_cpu_seconds(p) or 0.0 for p in pids} | {0: time.process_time()},
            "postgres": {p: backend_cpu_seconds(p) or 0.0 for p in pg}}  # fmt: skip


def spent(
    before: dict[str, dict[int, float]], after: dict[str, dict[int, float]], group: str
) -> float:
    return sum(max(0.0, cpu - before[group].get(p, 0.0)) for p, cpu in after[group].items())


def throughput(stack: Stack, processes: int, args: argparse.Namespace) -> Row:
    instances, workers = (processes, 1) if args.mode == "instances" else (1, processes)
    ports = stack.start_web(instances, workers)
    port = stack.port if args.mode == "instances" else ports[0]
    seed = stack.seed
    members = seed["members"]
    attempts = Counter[str]()

    def make(i: int) -> Callable[[], bool]:
        inner = mixed(port, seed["api_key"], members[i % len(members)], seed["sticker"])

        def counted() -> bool:
            ok = inner()
            attempts["ok" if ok else "error"] += 1
            return ok

        return counted

    run_clients(args.clients, 2, make)  # warm-up: connections, prepared statements
    attempts.clear()
    host0, ours0 = host_busy_seconds(), our_cpu(stack)
    count, elapsed, lat = run_clients(args.clients, args.seconds, make)
    ours1 = our_cpu(stack)
    python, postgres = spent(ours0, ours1, "python"), spent(ours0, ours1, "postgres")
    other = (host_busy_seconds() - host0) - python - postgres
    ms = sorted(x * 1000 for x in lat) or [float("nan")]

    def pct(p: float) -> float:
        return ms[min(len(ms) - 1, round(p / 100 * (len(ms) - 1)))]

    per = 1000 / max(count, 1)
    return Row(processes, count / elapsed, (pct(50), pct(95), pct(99)), attempts["error"],
               max(0.0, other) / elapsed, (python * per, postgres * per))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--mode", choices=["workers", "instances"], default="workers")
    parser.add_argument("--tasks", choices=["database", "rq"], default="database")
    parser.add_argument("--skip-races", action="store_true")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(f"host: {cores} cores, load average {os.getloadavg()[0]:.1f} at start", flush=True)
    with scaled_out(instances=2, web_workers=2, workers=2, tasks=args.tasks,
                    clients=args.clients) as stack:  # fmt: skip
        print(f"stack up (tasks: {args.tasks}; logs in {stack.logs})", flush=True)
        if not args.skip_races:
            races(stack)
        rows = []
        for n in [int(p) for p in args.processes.split(",")]:
            rows.append(throughput(stack, n, args))
            r = rows[-1]
            print(f"  {n} process(es): {r.rate:.0f} req/s", flush=True)
    print(f"\n(b) mixed workload, {args.clients} clients, {args.seconds:.0f} s per row, web "
          f"processes as {'instances behind the balancer' if args.mode == 'instances' else 'gunicorn workers'}:")  # fmt: skip
    print("| processes | requests/s | p50 ms | p95 ms | p99 ms | errors "
          "| CPU ms/request: Python + PostgreSQL | other load (cores) |")  # fmt: skip
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        p50, p95, p99 = r.pcts
        print(f"| {r.processes} | {r.rate:.0f} | {p50:.1f} | {p95:.1f} | {p99:.1f} | "
              f"{r.errors} | {r.cpu_ms[0]:.1f} + {r.cpu_ms[1]:.1f} | "
              f"{r.other_cores:.2f} of {cores} |")  # fmt: skip
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
