"""A member's journeys in a real browser against a real server, worker and Stripe emulator."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.journey import Journey
from tests.e2e.portal_stack import Stack

pytestmark = pytest.mark.slow


@pytest.fixture
def ada(chromium: Any, stack: Stack, request: pytest.FixtureRequest) -> Iterator[Journey]:
    journey = Journey.start(chromium, stack, request.node.name)
    journey.sign_in("ada@e2e.test")
    yield journey
    journey.close()
    assert journey.violations == []


def _balance(stack: Stack, member: str) -> int:
    status, body = stack.api("GET", f"/members/{member}/wallet")
    assert status == 200, body
    return int(body["balance"])


def test_signing_in_through_the_emailed_link_lands_on_the_page_asked_for(
    chromium: Any, stack: Stack
) -> None:
    journey = Journey.start(chromium, stack, "signin")
    journey.go("/wallet")
    assert journey.page.url.endswith("/signin?next=/wallet")
    journey.shot("signin")
    journey.sign_in("ada@e2e.test", "/wallet")
    assert journey.page.url.endswith("/wallet")
    journey.shot("wallet")
    journey.close()
    assert journey.violations == []


def test_a_right_answer_earns_points(ada: Journey) -> None:
    before = _balance(ada.stack, ada.stack.seed["ada"])
    ada.go(f"/earn/{ada.stack.seed['activities']['question']}")
    ada.page.get_by_label("Paris").check()
    ada.page.get_by_role("button", name="Answer").click()
    ada.page.get_by_text("Right!").wait_for()
    ada.shot("answered")
    assert _balance(ada.stack, ada.stack.seed["ada"]) == before + 10


def test_a_vote_shows_the_results(ada: Journey) -> None:
    ada.go(f"/earn/{ada.stack.seed['activities']['vote']}")
    ada.page.get_by_label("Lisbon").check()
    ada.page.get_by_role("button", name="Vote").click()
    ada.page.get_by_role("heading", name="Results").wait_for()
    ada.shot("voted")


def test_watching_the_video_to_the_end_earns_its_points(ada: Journey) -> None:
    before = _balance(ada.stack, ada.stack.seed["ada"])
    ada.go(f"/earn/{ada.stack.seed['activities']['video']}")
    ada.page.locator("video").evaluate("v => v.play()")
    ada.page.locator("[data-video-status][data-completed=true]").wait_for(timeout=20_000)
    ada.shot("watched")
    assert _balance(ada.stack, ada.stack.seed["ada"]) == before + 20


def _pay_by_card(journey: Journey, number: str, amount: str = "10.00") -> None:
    journey.go("/credit")
    journey.page.get_by_role("spinbutton", name="Amount").fill(amount)
    card = journey.page.locator("[data-card-element]")
    card.get_by_placeholder("number").fill(number)
    card.get_by_placeholder("exp_month").fill("12")
    card.get_by_placeholder("exp_year").fill("31")
    card.get_by_placeholder("cvc").fill("123")
    card.get_by_placeholder("postal_code").fill("10001")
    journey.shot("card")
    journey.page.get_by_role("button", name="Pay").click()


def test_buying_credit_with_4242_credits_the_wallet(ada: Journey) -> None:
    before = _balance(ada.stack, ada.stack.seed["ada"])
    _pay_by_card(ada, "4242424242424242")
    ada.page.get_by_text("1,000 pts credited").wait_for()
    ada.shot("receipt")
    assert _balance(ada.stack, ada.stack.seed["ada"]) == before + 1000


def test_buying_credit_with_a_3ds_card_passes_the_challenge(ada: Journey) -> None:
    before = _balance(ada.stack, ada.stack.seed["ada"])
    _pay_by_card(ada, "4000002500003155")
    ada.page.get_by_role("button", name="Complete authentication").click()
    ada.page.get_by_text("1,000 pts credited").wait_for()
    ada.shot("receipt-3ds")
    assert _balance(ada.stack, ada.stack.seed["ada"]) == before + 1000


def test_ordering_a_product_pays_from_the_wallet(ada: Journey) -> None:
    before = _balance(ada.stack, ada.stack.seed["ada"])
    ada.go("/shop")
    ada.page.get_by_role("article").filter(has_text="Mug").get_by_role(
        "button", name="Add to cart"
    ).click()
    ada.page.locator("#cart-count", has_text="1").wait_for()
    ada.go("/shop/cart")
    ada.shot("cart")
    ada.page.get_by_role("button", name="Order").dblclick()
    ada.page.get_by_text("Thank you for your order").wait_for()
    ada.shot("ordered")
    assert _balance(ada.stack, ada.stack.seed["ada"]) == before - 300


def test_an_order_refused_for_balance_says_what_is_missing_and_emails_the_admin(
    ada: Journey,
) -> None:
    ada.go("/shop")
    ada.page.get_by_role("article").filter(has_text="Jacket").get_by_role(
        "button", name="Add to cart"
    ).click()
    ada.page.locator("#cart-count", has_text="1").wait_for()
    ada.go("/shop/cart")
    ada.page.get_by_role("button", name="Order").click()
    ada.page.get_by_text("short of this order").wait_for()
    ada.shot("refused")
    refused = [
        m for m in ada.stack.emails_to("admin@e2e.test") if "refused" in str(m["Subject"]).lower()
    ]
    assert refused, [str(m["Subject"]) for m in ada.stack.emails_to("admin@e2e.test", timeout=0)]


def test_member_a_opening_member_b_records_gets_not_found(ada: Journey) -> None:
    seed = ada.stack.seed
    for path in (
        f"/shop/orders/{seed['bobs_order']}",
        f"/events/checkouts/{seed['bobs_checkout']}",
    ):
        response = ada.go(path)
        assert response is not None, path
        assert response.status == 404, path
