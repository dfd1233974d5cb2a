"""What the soak checks once the load has stopped, each a named pass or fail with detail.

Read straight from the soak's database (plain SQL, so the checks need no Django settings of
their own and run the same inside pytest), from localstripe's store and from the SMTP
sink's inbox. Money is compared per transaction and in total: what the emulator captured
against what the ledger booked into Stripe's clearing account."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import psycopg
import requests
from bench.soak_faults import Injected
from bench.soak_stack import STRIPE_KEY, Stack
from bench.soak_workload import Call, Record

TABLES = {"checkout": "events_checkout", "invoice": "billing_invoice",
          "transaction": "billing_transaction", "order": "loyalty_order",
          "completion": "loyalty_completion"}  # fmt: skip
EXPECTED_FAULT_ANSWERS = (0, 500, 502, 503, 504)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def failed_calls(calls: list[Call]) -> list[Call]:
    """Server errors and calls that got no answer at all."""
    return [c for c in calls if c.status == 0 or c.status >= 500]


def in_window(call: Call, faults: list[Injected]) -> Injected | None:
    return next(
        (f for f in faults if f.covers(call.start, call.latency, call.op, call.error)), None
    )


def check_server_errors(record: Record, faults: list[Injected]) -> Check:
    outside = [c for c in failed_calls(record.calls) if in_window(c, faults) is None]
    by = Counter(f"{c.op} {c.status or c.error}" for c in outside)
    return Check("no 5xx or unanswered call outside fault windows", not outside,
                 f"{len(outside)} outside: {dict(by)}" if outside else "0")  # fmt: skip


def check_bench_errors(record: Record) -> Check:
    errors = [c.error for c in record.calls if c.op == "bench_error"]
    return Check("the bench's own clients raised nothing", not errors, "; ".join(errors[:3]) or "0")


def check_replays(record: Record) -> Check:
    bad = record.replay_mismatches
    return Check("a repeated key replays the first answer", not bad,
                 "; ".join(bad[:5]) if bad else "all replayed")  # fmt: skip


def check_created(conn: psycopg.Connection, record: Record) -> Check:
    by_kind: dict[str, set[str]] = defaultdict(set)
    for kind, ident in record.created:
        by_kind[kind].add(ident)
    missing = []
    for kind, ids in by_kind.items():
        found = conn.execute(f"SELECT id FROM {TABLES[kind]} WHERE id = ANY(%s)", (list(ids),))
        missing += [f"{kind} {i}" for i in ids - {row[0] for row in found}]
    total = sum(len(ids) for ids in by_kind.values())
    return Check("every id a 201/202 returned is in the database", not missing,
                 f"{total} ids, missing: {missing[:5]}" if missing else f"{total} ids, all present")  # fmt: skip


def check_oversell(conn: psycopg.Connection) -> Check:
    items = conn.execute(
        "SELECT name, sold, capacity FROM events_eventitem WHERE capacity IS NOT NULL "
        "AND sold > capacity").fetchall()  # fmt: skip
    events = conn.execute(
        "SELECT e.name, e.capacity, count(a.id) FROM events_event e JOIN events_attendee a "
        "ON a.event_id = e.id AND a.status = 'registered' WHERE e.capacity IS NOT NULL "
        "GROUP BY e.id HAVING count(a.id) > e.capacity OR max(e.sold) > e.capacity").fetchall()  # fmt: skip
    limited = conn.execute(
        "SELECT e.sold, e.capacity FROM events_event e WHERE e.capacity IS NOT NULL"
    ).fetchall()
    return Check("no item or event oversold", not items and not events,
                 f"over: {items + events}" if items or events else f"limited (sold, capacity): {limited}")  # fmt: skip


def check_wallets(conn: psycopg.Connection) -> Check:
    negative = conn.execute(
        "SELECT code, balance FROM ledger_ledgeraccount WHERE code LIKE 'wallet:%%' "
        "AND balance < 0").fetchall()  # fmt: skip
    return Check("no negative wallet", not negative, f"{negative[:5]}" if negative else "none")


def check_ledger(stack: Stack) -> Check:
    done = stack.tessera("ledger", "verify")
    text = (done.stdout + done.stderr).strip().splitlines()
    return Check("tessera ledger verify clean", done.returncode == 0,
                 f"exit {done.returncode}: {' | '.join(text[-3:])}")  # fmt: skip


def drain_emails(conn: psycopg.Connection, timeout: float) -> float:
    """Wait for the worker to send what is queued (retries included); seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        left = conn.execute(
            "SELECT count(*) FROM notifications_outboundemail WHERE status IN "
            "('queued', 'retrying')").fetchone()  # fmt: skip
        if left is not None and left[0] == 0:
            break
        time.sleep(1)
    return time.monotonic() - t0


def check_emails(conn: psycopg.Connection, stack: Stack) -> Check:
    found = conn.execute("SELECT id, status, attempts FROM notifications_outboundemail").fetchall()
    rows = {i: s for i, s, _ in found}
    retried = {i for i, _, attempts in found if attempts > 1}
    received = Counter(str(m["X-Tessera-Email-Id"]) for m in list(stack.inbox.messages))
    statuses = Counter(rows.values())
    sent = {i for i, s in rows.items() if s == "sent"}
    # A worker killed between the SMTP server's 250 and recording "sent" cannot know the
    # mail left: the email is sent again (at least once). Such a duplicate always follows an
    # attempt whose outcome went unrecorded; any other is a bug.
    doubles = sorted(i for i, n in received.items() if n > 1)
    after_kill = [i for i in doubles if i in retried]
    twice = [i for i in doubles if i not in retried]
    never = sorted(sent - set(received))
    unknown = sorted(set(received) - set(rows))
    left = sorted(i for i, s in rows.items() if s != "sent")
    ok = not (twice or never or unknown or left)
    detail = (f"{len(rows)} queued in all {dict(statuses)}; received {sum(received.values())}; "
              f"twice {twice[:5]}; twice after an interrupted attempt (at-least-once window) "
              f"{after_kill[:5]}; sent but not received {never[:5]}; received unknown "
              f"{unknown[:5]}; not sent {left[:5]}")  # fmt: skip
    return Check("every queued email sent and received exactly once", ok, detail)


def stripe_intents(stack: Stack) -> list[dict[str, Any]]:
    """Every PaymentIntent in the emulator (asked directly, not through the proxy)."""
    found: list[dict[str, Any]] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"starting_after": after} if after else {})}
        page = requests.get(f"{stack.localstripe}/v1/payment_intents", params=params,
                            auth=(STRIPE_KEY, ""), timeout=120).json()  # fmt: skip
        found += page["data"]
        if not page.get("has_more") or not page["data"]:
            return found
        after = page["data"][-1]["id"]


def check_money(conn: psycopg.Connection, stack: Stack, record: Record) -> list[Check]:
    intents = stripe_intents(stack)
    captured_at_stripe = [p for p in intents if p["status"] == "succeeded"]
    by_txn: dict[str, list[str]] = defaultdict(list)
    for p in captured_at_stripe:
        by_txn[(p.get("metadata") or {}).get("tessera_transaction", "?")].append(p["id"])
    txns = dict(conn.execute("SELECT id, status FROM billing_transaction").fetchall())
    ledger_row = conn.execute(
        "SELECT balance FROM ledger_ledgeraccount WHERE code = 'stripe:clearing:USD'"
    ).fetchone()
    ledger = ledger_row[0] if ledger_row else 0
    stripe_total = sum(int(p["amount"]) for p in captured_at_stripe)
    doubled = {t: p for t, p in by_txn.items() if len(p) > 1}
    lost = sorted(t for t in by_txn if txns.get(t) != "captured")
    unbacked = sorted(t for t, s in txns.items() if s == "captured" and t not in by_txn)
    answered_paid = {t for _, t in record.paid_checkouts} | {
        t for t, s, _ in record.credit if s == 201
    }
    unpaid = sorted(t for t in answered_paid if txns.get(t) != "captured")
    return [
        Check("money captured at Stripe equals money in the ledger", stripe_total == ledger,
              f"Stripe {stripe_total} vs ledger clearing {ledger} USD cents, "
              f"{len(captured_at_stripe)} captured intents of {len(intents)}"),
        Check("nothing lost: every intent Stripe captured is captured here", not lost,
              f"{len(lost)}: {lost[:5]}" if lost else "0"),
        Check("nothing invented: every captured transaction has its intent", not unbacked,
              f"{len(unbacked)}: {unbacked[:5]}" if unbacked else "0"),
        Check("nothing doubled: one captured intent per transaction", not doubled,
              f"{doubled}" if doubled else "0"),
        Check("every payment answered 201 is captured", not unpaid,
              f"{len(answered_paid)} answered, not captured: {unpaid[:5]}"),
    ]  # fmt: skip


def run_checks(stack: Stack, record: Record, faults: list[Injected], drain: float) -> list[Check]:
    with psycopg.connect(stack.db_url, autocommit=True) as conn:
        waited = drain_emails(conn, drain)
        checks = [check_server_errors(record, faults), check_bench_errors(record),
                  check_replays(record), check_created(conn, record), check_ledger(stack),
                  check_oversell(conn), check_wallets(conn)]  # fmt: skip
        checks += check_money(conn, stack, record)
        email = check_emails(conn, stack)
        email.detail += f"; drained in {waited:.0f} s"
        checks.append(email)
    return checks
