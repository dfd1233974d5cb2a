"""What a person reads in an email or an error: amounts in their currency's units and the
locale's digits (Babel), and links only to pages that exist."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tessera.loyalty.adjustments import adjust_points
from tessera.loyalty.ordering import InsufficientBalance, OrderLineSpec, place_order
from tessera.notifications.models import OutboundEmail
from tests.support.loyalty import member, product, program

pytestmark = pytest.mark.django_db


@pytest.fixture
def low_balance_emails() -> dict[str, OutboundEmail]:
    prog = program(low_balance_threshold=5000)
    m = member(prog, points=6000)
    adjust_points(m.pk, points=-3500, reason="spent")
    return {e.template: e for e in OutboundEmail.objects.filter(template__startswith="low_")}


def test_the_member_reads_the_balance_with_thousands_separated(
    low_balance_emails: dict[str, OutboundEmail],
) -> None:
    assert "2,500 points, below 5,000 points" in low_balance_emails["low_balance_member"].text_body


def test_the_member_subject_says_the_balance(low_balance_emails: dict[str, OutboundEmail]) -> None:
    assert low_balance_emails["low_balance_member"].subject.endswith("2,500 points")


def test_the_admin_reads_the_threshold_formatted(
    low_balance_emails: dict[str, OutboundEmail],
) -> None:
    assert "threshold of 5,000 points" in low_balance_emails["low_balance_admin"].text_body


@pytest.mark.parametrize("part", ["text_body", "html_body"])
def test_the_member_is_not_sent_to_a_portal_that_does_not_exist(
    low_balance_emails: dict[str, OutboundEmail], part: str
) -> None:
    assert "portal" not in getattr(low_balance_emails["low_balance_member"], part)


def test_a_refused_order_email_formats_its_points() -> None:
    prog = program()
    m = member(prog, points=1200)
    with pytest.raises(InsufficientBalance):
        place_order(m.pk, [OrderLineSpec(product(prog, 1500).pk, 1)])
    body = OutboundEmail.objects.get(template="order_refused_admin").text_body
    assert "Total: 1,500 points" in body


def test_a_refusal_says_its_points_formatted() -> None:
    prog = program()
    m = member(prog, points=1200)
    with pytest.raises(InsufficientBalance) as refused:
        place_order(m.pk, [OrderLineSpec(product(prog, 1500).pk, 1)])
    assert refused.value.detail == "The wallet holds 1,200 points; this order needs 1,500 points."


def test_one_point_is_singular() -> None:
    from tessera.core.money import format_points

    assert format_points(1) == "1 point"


def test_a_dispute_email_says_the_amount_in_the_currency(api: Any, stripe_env: Any) -> None:
    import time

    from tests.support.stripe import paid, signed

    txn, _ = paid(stripe_env, 2500)
    event = {"id": "evt_fmt", "type": "charge.dispute.created", "created": int(time.time()),
             "data": {"object": {"id": "dp_1", "amount": 2500, "reason": "fraudulent",
                                 "payment_intent": txn.stripe_payment_intent_id}}}  # fmt: skip
    payload, sig = signed(event)
    api.client.post("/api/v1/webhooks/stripe", payload, content_type="application/json",
                    headers={"Stripe-Signature": sig})  # fmt: skip
    body = OutboundEmail.objects.get(template="dispute_admin").text_body
    assert "($25.00)" in body


def test_an_adjustment_below_zero_says_the_balance_in_points(admin_api: Any) -> None:
    m = member(program(), points=1200)
    r = admin_api.post(f"/members/{m.pk}/adjustments", {"points": -5000, "reason": "x"})
    assert (
        json.loads(r.content)["detail"]
        == "The balance of 1,200 points does not cover 5,000 points."
    )
