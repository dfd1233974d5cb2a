"""A form clicked many times at once acts once: real concurrent requests on PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from django.test import Client

from tessera.loyalty.models import Order
from tests.support.loyalty import balance, member, product, program
from tests.support.portal import signed_in

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CLICKS = 20


def _clicks(session: str, data: dict[str, str]) -> Counter[str]:
    """``CLICKS`` posts of one form from one signed-in browser, released together."""
    barrier = threading.Barrier(CLICKS)
    answers: Counter[str] = Counter()
    lock = threading.Lock()

    def click() -> None:
        client = Client()
        client.cookies["sessionid"] = session
        barrier.wait()
        response = client.post("/shop/cart", data)
        with lock:
            answers[f"{response.status_code} {response.get('Location', '')}"] += 1

    threads = [threading.Thread(target=click) for _ in range(CLICKS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


@pytest.fixture
def shopper() -> tuple[Client, object, object]:
    club = program(low_balance_threshold=0)
    buyer = member(club, email="fast@example.com", points=10_000)
    browser = signed_in(buyer.contact)
    browser.post("/shop/cart", {"product_id": product(club, price=100).pk, "quantity": "1"})
    return browser, buyer, club


def test_twenty_simultaneous_clicks_of_order_place_one_order(shopper: tuple) -> None:
    browser, buyer, _ = shopper
    _clicks(browser.cookies["sessionid"].value, {"order": "1", "form_key": "k" * 24})
    assert Order.objects.filter(member=buyer, status="placed").count() == 1


def test_every_click_lands_on_the_one_order(shopper: tuple) -> None:
    browser, _, _ = shopper
    answers = _clicks(browser.cookies["sessionid"].value, {"order": "1", "form_key": "k" * 24})
    assert list(answers) == [f"302 /shop/orders/{Order.objects.get().pk}"]


def test_the_wallet_is_charged_once(shopper: tuple) -> None:
    browser, buyer, _ = shopper
    _clicks(browser.cookies["sessionid"].value, {"order": "1", "form_key": "k" * 24})
    assert balance(buyer) == 10_000 - 100
