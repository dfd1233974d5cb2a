"""Real concurrent checkouts over the API on PostgreSQL: no item, event or promo code is
ever taken past its limit, the losers leave nothing registered or paid, and invoice
numbers stay gapless while some checkouts fail."""

from __future__ import annotations

import re
import threading
from collections import Counter
from typing import Any

import pytest

from tessera.billing.models import Invoice
from tessera.crm.matching import rules
from tessera.crm.matching.standard import install_standard_rules
from tessera.events.models import Attendee, Checkout, Event, EventItem, PromoCode
from tests.support.api import Api
from tests.support.concurrency import hammer
from tests.support.events import attendee, body, by_wallet, event, item, promo
from tests.support.loyalty import member, program

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CHECKOUTS = 500


@pytest.fixture(autouse=True)
def standard_rules() -> None:
    # Transactional tests flush every table after them, the migrated standard rules too.
    install_standard_rules()
    rules.invalidate()


def buyers(event_id: str, tickets: list[EventItem], **extra: Any) -> Any:
    """A call that checks out the next new person, for the tickets in turn."""
    turn = iter(range(10**6))
    pick = threading.Lock()

    def buy(api: Api) -> Any:
        with pick:
            n = next(turn)
        return api.post(
            f"/events/{event_id}/checkout", body(attendee(tickets[n % len(tickets)], n), **extra)
        )

    return buy


def registered() -> int:
    return Attendee.objects.filter(status="registered").count()


def test_an_item_of_a_hundred_places_never_oversells() -> None:
    ev = event()
    ticket = item(ev, price=0, capacity=100)
    statuses = Counter(s for s, _ in hammer(CHECKOUTS, buyers(ev.pk, [ticket])))
    assert statuses == {201: 100, 409: 400}
    assert registered() == 100
    assert EventItem.objects.get(pk=ticket.pk).sold == 100
    # The losers were refused before anything was written: no checkout, no invoice.
    assert Checkout.objects.count() == 100
    assert Invoice.objects.filter(status="paid").count() == 100


def test_the_event_capacity_is_never_passed() -> None:
    ev = event(capacity=100)
    tickets = [item(ev, price=0, name="A"), item(ev, price=0, name="B")]
    statuses = Counter(s for s, _ in hammer(CHECKOUTS, buyers(ev.pk, tickets)))
    assert statuses == {201: 100, 409: 400}
    assert registered() == 100
    assert Event.objects.get(pk=ev.pk).sold == 100
    assert sum(EventItem.objects.values_list("sold", flat=True)) == 100


def test_a_promo_code_is_never_used_past_its_limit() -> None:
    ev = event()
    ticket = item(ev, price=1000)
    code = promo(ev, code="TEN", percent_off=100, max_uses=10)
    statuses = Counter(s for s, _ in hammer(CHECKOUTS, buyers(ev.pk, [ticket], promo_code="TEN")))
    assert statuses == {201: 10, 409: 490}
    assert PromoCode.objects.get(pk=code.pk).used == 10
    assert registered() == 10


def test_invoice_numbers_stay_gapless_while_checkouts_fail() -> None:
    """200 points checkouts, a third from wallets too poor to pay: the failed ones keep
    their invoices void and unnumbered, and the paid ones are numbered 1 to N."""
    prog = program(currency="EUR", points_per_unit=100)
    rich = [member(prog, email=f"rich{i}@example.org", points=10**6) for i in range(20)]
    poor = [member(prog, email=f"poor{i}@example.org", points=1) for i in range(10)]
    ev = event(program_id=prog.pk)
    ticket = item(ev, price=500)
    payers = rich + poor
    turn = iter(range(10**6))
    pick = threading.Lock()

    def buy(api: Api) -> Any:
        with pick:
            n = next(turn)
        payer = payers[n % len(payers)]
        return api.post(
            f"/events/{ev.pk}/checkout", body(attendee(ticket, n), payment=by_wallet(payer.pk))
        )

    statuses = Counter(s for s, _ in hammer(200, buy))
    assert set(statuses) == {201, 402}
    numbers = sorted(Invoice.objects.filter(number__isnull=False).values_list("number", flat=True))
    assert [int(re.sub(r".*-", "", n)) for n in numbers] == list(range(1, statuses[201] + 1))
    assert Invoice.objects.filter(status="void", number__isnull=True).count() == statuses[402]
