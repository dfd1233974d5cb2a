"""Real concurrent requests against PostgreSQL: no wallet goes negative, no stock oversells,
no activity pays twice."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections

from tessera.ledger.services import verify
from tessera.loyalty.models import Order, WalletTransaction
from tessera.notifications.models import OutboundEmail
from tests.support.api import Api
from tests.support.concurrency import THREADS, hammer
from tests.support.loyalty import balance, member, product, program, question

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

REQUESTS = 200


def one_each_in_turn(buyers: list[Any], product_id: str) -> Callable[[Api], Any]:
    """A call that orders one of the product for the next buyer in turn."""
    turn = iter(range(REQUESTS))
    pick = threading.Lock()

    def order(api: Api) -> Any:
        with pick:
            buyer = buyers[next(turn) % len(buyers)]
        lines = [{"product_id": product_id, "quantity": 1}]
        return api.post(f"/members/{buyer.pk}/orders", {"lines": lines})

    return order


def test_wallet_covering_37_orders_pays_exactly_37() -> None:
    prog = program(low_balance_threshold=0)
    mug = product(prog, 100)
    m = member(prog, points=37 * 100)
    results = hammer(
        REQUESTS,
        lambda api: api.post(
            f"/members/{m.pk}/orders", {"lines": [{"product_id": mug.pk, "quantity": 1}]}
        ),
    )
    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 37, 402: REQUESTS - 37}
    assert all(body["code"] == "insufficient_balance" for status, body in results if status == 402)
    assert balance(m) == 0
    assert (
        min(WalletTransaction.objects.filter(member=m).values_list("balance_after", flat=True)) == 0
    )
    assert Order.objects.filter(status="placed").count() == 37
    assert Order.objects.filter(status="refused").count() == REQUESTS - 37
    assert OutboundEmail.objects.filter(template="order_refused_admin").count() == REQUESTS - 37
    assert verify().ok


def test_stock_of_37_sells_exactly_37() -> None:
    """Many members at once, each wallet rich enough: only the stock can refuse, so no
    wallet lock serialises these orders."""
    prog = program(low_balance_threshold=0)
    mug = product(prog, 1, stock=37)
    buyers = [member(prog, points=10_000) for _ in range(THREADS)]
    results = hammer(REQUESTS, one_each_in_turn(buyers, mug.pk))
    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 37, 409: REQUESTS - 37}
    refusals = [body for status, body in results if status == 409]
    assert all(b["code"] == "sold_out" and b["available"] == 0 for b in refusals)
    mug.refresh_from_db()
    assert mug.stock == 0
    assert sum(10_000 - balance(b) for b in buyers) == 37
    assert Order.objects.filter(status="placed").count() == 37
    assert verify().ok


def test_orders_of_many_members_for_an_unlimited_product_all_succeed() -> None:
    """The shared product and redemption account are never a reason to fail."""
    prog = program(low_balance_threshold=0)
    sticker = product(prog, 3)
    buyers = [member(prog, points=300) for _ in range(THREADS)]
    results = hammer(REQUESTS, one_each_in_turn(buyers, sticker.pk))
    assert Counter(status for status, _ in results) == {201: REQUESTS}
    assert sum(300 - balance(b) for b in buyers) == 3 * REQUESTS
    prog.redemption_account.refresh_from_db()
    assert prog.redemption_account.balance == 3 * REQUESTS
    assert verify().ok


def test_completing_an_activity_concurrently_earns_once() -> None:
    prog = program()
    act = question(prog, points=25)
    m = member(prog)
    results = hammer(
        THREADS,
        lambda api: api.post(
            f"/members/{m.pk}/activities/{act.pk}/completions", {"answer": "Paris"}
        ),
    )
    statuses = Counter(status for status, _ in results)
    assert statuses == {201: 1, 409: THREADS - 1}
    assert balance(m) == 25
    assert WalletTransaction.objects.filter(member=m, type="points_earned").count() == 1
    assert verify().ok


def test_ledger_verify_is_clean_while_orders_commit() -> None:
    """`ledger verify` on a live system: orders committing between its reads must never
    show up as a balance that differs from its postings."""
    prog = program(low_balance_threshold=0)
    mug = product(prog, 1)
    buyers = [member(prog, email=f"v{i}@example.com", points=10_000) for i in range(8)]
    stop = threading.Event()
    reports = []

    def check() -> None:
        try:
            while not stop.is_set():
                reports.append(verify())
        finally:
            connections.close_all()

    checker = threading.Thread(target=check)
    checker.start()
    try:
        results = hammer(REQUESTS, one_each_in_turn(buyers, mug.pk))
    finally:
        stop.set()
        checker.join(timeout=60)
    assert Counter(status for status, _ in results) == {201: REQUESTS}
    assert len(reports) >= 3, "verify should have run while the orders were placed"
    bad = [(r.balance_mismatches, r.unbalanced_entries) for r in reports if not r.ok]
    assert bad == []
    assert verify().ok
