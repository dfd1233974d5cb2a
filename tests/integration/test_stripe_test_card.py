"""`tessera stripe test-card`: a PaymentMethod id for a test card, without a browser."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import stripe
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.support.api import Api
from tests.support.loyalty import member, program
from tests.support.smtp import free_port

pytestmark = pytest.mark.django_db


def _test_card(*args: str) -> str:
    out = io.StringIO()
    call_command("stripe", "test-card", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue().strip()


def test_it_prints_a_payment_method_a_credit_purchase_accepts(
    api: Api, stripe_env: stripe.StripeClient
) -> None:
    payment_method = _test_card()
    m = member(program(points_per_unit=100))
    body = {"amount": 2500, "currency": "USD", "payment_method_id": payment_method}
    r = api.post(f"/members/{m.pk}/credit-purchases", body, headers={"Idempotency-Key": "tc-1"})
    assert r.status_code == 201, r.content
    assert json.loads(r.content)["points"] == 2500


def test_it_makes_the_card_number_asked_for(stripe_env: stripe.StripeClient) -> None:
    payment_method = _test_card("--number", "4000 0025 0000 3155")
    card = stripe_env.v1.payment_methods.retrieve(payment_method).card
    assert card is not None
    assert card.last4 == "3155"


def test_it_refuses_a_live_key(settings: Any) -> None:
    settings.STRIPE_SECRET_KEY = "sk_live_abc"
    settings.STRIPE_API_BASE = "http://127.0.0.1:9"
    with pytest.raises(CommandError, match="live key"):
        _test_card()


def test_it_refuses_without_an_emulator(settings: Any) -> None:
    settings.STRIPE_SECRET_KEY = "sk_test_abc"
    settings.STRIPE_API_BASE = ""
    with pytest.raises(CommandError, match="no Stripe emulator is configured"):
        _test_card()


def test_it_says_when_the_emulator_does_not_answer(settings: Any) -> None:
    settings.STRIPE_SECRET_KEY = "sk_test_abc"
    settings.STRIPE_API_BASE = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(CommandError, match="does not answer"):
        _test_card()
