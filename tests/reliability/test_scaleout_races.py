"""Races decided exactly across processes: two ``tessera serve`` instances (two gunicorn
workers each) behind bench/balancer.py and two ``tessera worker``s on one PostgreSQL
database, driven over HTTP like production (tests/support/scaleout.py).

The locks that decide these races are PostgreSQL's row locks, so they must hold whichever
process a request lands on; the emails the races cause are shared out between the two
workers and must each be sent once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.scaleout import Stack, scaled_out
from tests.support.scaleout_races import (
    CheckoutRace,
    EmailOutcome,
    WalletRace,
    checkout_race,
    email_outcome,
    wallet_race,
)
from tests.support.scaleout_seed import AFFORDABLE, CAPACITY

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CHECKOUTS = 50
ORDERS = 40


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    with scaled_out(instances=2, web_workers=2, workers=2, clients=1) as running:
        yield running


@pytest.fixture(scope="module")
def checkouts(stack: Stack) -> CheckoutRace:
    return checkout_race(stack, CHECKOUTS)


@pytest.fixture(scope="module")
def orders(stack: Stack) -> WalletRace:
    return wallet_race(stack, ORDERS)


@pytest.fixture(scope="module")
def emails(stack: Stack, checkouts: CheckoutRace, orders: WalletRace) -> EmailOutcome:
    return email_outcome(stack)


def test_concurrent_checkouts_sell_exactly_the_capacity(checkouts: CheckoutRace) -> None:
    assert checkouts.statuses == {201: CAPACITY, 409: CHECKOUTS - CAPACITY}
    assert checkouts.codes == {"sold_out": CHECKOUTS - CAPACITY}
    assert checkouts.registered == CAPACITY
    assert checkouts.sold == CAPACITY


def test_concurrent_orders_spend_exactly_the_balance(orders: WalletRace) -> None:
    assert orders.statuses == {201: AFFORDABLE, 402: ORDERS - AFFORDABLE}
    assert orders.codes == {"insufficient_balance": ORDERS - AFFORDABLE}
    assert orders.balance == 0
    assert orders.lowest_balance >= 0
    assert orders.ledger_clean


def test_every_email_the_races_queued_is_sent_once(emails: EmailOutcome) -> None:
    # A confirmation per ticket sold, an admin notice per refused order.
    assert len(emails.queued) == CAPACITY + ORDERS - AFFORDABLE
    assert emails.sent == len(emails.queued)
    assert emails.missing == []
    assert emails.duplicates == []
    # Which worker sends which email is the queue's choice (both usually take a share, but
    # one may take all on a busy machine): the contract is once each, which is asserted.
