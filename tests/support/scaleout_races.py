"""The races a scaled-out stack must still decide exactly: many concurrent requests, spread
over every web process by the balancer, for one item's last places and one wallet's last
points; then every email the two workers share out, sent once."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from tests.support.scaleout import Stack, fire


def refusal_codes(results: list[tuple[int, Any]]) -> Counter[str]:
    return Counter(
        str((body or {}).get("code")) for status, body in results if status not in (200, 201)
    )


@dataclass
class CheckoutRace:
    statuses: Counter[int]
    codes: Counter[str]
    registered: int
    sold: int


def checkout_race(stack: Stack, n: int = 50) -> CheckoutRace:
    """``n`` new people at once checking out one free ticket of an item with few places."""
    seed = stack.seed

    def buy(i: int) -> tuple[int, Any]:
        person = {"first_name": f"Guest{i}", "last_name": "Example",
                  "email": f"guest{i}@scale.test"}  # fmt: skip
        attendee = {**person, "items": [{"item_id": seed["ticket"], "quantity": 1}]}
        body = {"buyer": person, "attendees": [attendee], "payment": None}
        return stack.api("POST", f"/events/{seed['event']}/checkout", body)

    results = fire(n, buy)
    ((registered,),) = stack.sql("SELECT count(*) FROM events_attendee WHERE status = 'registered'")
    ((sold,),) = stack.sql("SELECT sold FROM events_eventitem WHERE id = %s", seed["ticket"])
    return CheckoutRace(Counter(s for s, _ in results), refusal_codes(results), registered, sold)


@dataclass
class WalletRace:
    statuses: Counter[int]
    codes: Counter[str]
    balance: int
    lowest_balance: int
    ledger_clean: bool


def wallet_race(stack: Stack, n: int = 40) -> WalletRace:
    """``n`` orders at once from one member whose points cover fewer of them."""
    seed = stack.seed
    member = seed["race_member"]
    lines = {"lines": [{"product_id": seed["mug"], "quantity": 1}]}
    results = fire(n, lambda i: stack.api("POST", f"/members/{member}/orders", lines))
    _, wallet = stack.api("GET", f"/members/{member}/wallet")
    ((lowest,),) = stack.sql(
        "SELECT min(balance_after) FROM loyalty_wallettransaction WHERE member_id = %s", member
    )
    verify = stack.run("-m", "tessera.cli", "ledger", "verify")
    return WalletRace(
        Counter(s for s, _ in results), refusal_codes(results), int(wallet["balance"]),
        int(lowest), verify.returncode == 0,
    )  # fmt: skip


@dataclass
class EmailOutcome:
    queued: list[str]  # OutboundEmail ids
    sent: int  # of them marked sent
    delivered: Counter[str]  # messages the SMTP server received, by X-Tessera-Email-Id
    workers: int | None  # distinct workers that ran send_email (database backend only)

    @property
    def duplicates(self) -> list[str]:
        return sorted(i for i, count in self.delivered.items() if count > 1)

    @property
    def missing(self) -> list[str]:
        return sorted(set(self.queued) - set(self.delivered))


def email_outcome(stack: Stack, timeout: float = 60, settle: float = 2) -> EmailOutcome:
    """Waits until every queued email is sent (or ``timeout``), then ``settle`` seconds more
    for any late second copy, and reports what arrived."""
    deadline = time.monotonic() + timeout
    while True:
        rows = stack.sql("SELECT id, status FROM notifications_outboundemail")
        sent = sum(1 for _, status in rows if status == "sent")
        if (sent == len(rows) and len(stack.inbox.messages) >= sent) or (
            time.monotonic() > deadline
        ):
            break
        time.sleep(0.25)
    time.sleep(settle)
    delivered = Counter(str(m["X-Tessera-Email-Id"]) for m in list(stack.inbox.messages))
    workers = None
    if stack.env.get("TESSERA_TASKS_BACKEND", "database") == "database":
        ids = stack.sql(
            "SELECT DISTINCT jsonb_array_elements_text(worker_ids::jsonb) FROM "
            "django_tasks_database_dbtaskresult WHERE task_path LIKE %s",
            "%send_email",
        )
        workers = len(ids)
    return EmailOutcome([str(i) for i, _ in rows], sent, delivered, workers)
