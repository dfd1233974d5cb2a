"""Test PaymentMethods on a Stripe emulator, for trying card payments without a browser.

In production the browser turns a card into a PaymentMethod id (Stripe.js) and card numbers
never reach us. To try the API from a terminal, the demo and ``tessera stripe test-card``
make one on the local emulator, which accepts Stripe's test card numbers as they are;
Stripe itself accepts only its test tokens (``pm_card_visa``), and never with a live key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import stripe
from stripe.params import PaymentMethodCreateParams

DEFAULT_TEST_CARD = "4242424242424242"
LIVE_KEY_PREFIXES = ("sk_live_", "rk_live_")
TEST_KEY_PREFIXES = ("sk_test_", "rk_test_")


class CardNotMade(Exception):
    """No test PaymentMethod could be made; the message says why and what to do."""


@dataclass(frozen=True)
class EmulatorCard:
    payment_method_id: str
    brand: str
    last4: str


def refusal(secret_key: str, api_base: str) -> str | None:
    """Why Stripe's configuration is not one to make test cards with, or None."""
    if secret_key.startswith(LIVE_KEY_PREFIXES):
        return (
            "refusing: STRIPE_SECRET_KEY is a live key (sk_live_…); test cards are made "
            "only with a test key on a Stripe emulator."
        )
    if not api_base:
        return (
            "no Stripe emulator is configured (STRIPE_API_BASE is not set): run this in the "
            "directory where `tessera demo` runs, or set STRIPE_API_BASE to a localstripe URL "
            "and STRIPE_SECRET_KEY to a test key (sk_test_…). Stripe itself takes no card "
            "numbers; use its test PaymentMethods such as pm_card_visa there."
        )
    if not secret_key.startswith(TEST_KEY_PREFIXES):
        return "STRIPE_SECRET_KEY must be a test key (sk_test_…) to make test cards."
    return None


def make_test_card(number: str, *, secret_key: str, api_base: str) -> EmulatorCard:
    """A new PaymentMethod for the test card ``number`` on the emulator at ``api_base``."""
    reason = refusal(secret_key, api_base)
    if reason:
        raise CardNotMade(reason)
    # No retries: the emulator runs on this machine, and a person is waiting for the answer.
    client = stripe.StripeClient(
        secret_key, base_addresses={"api": api_base}, max_network_retries=0
    )
    params: PaymentMethodCreateParams = {
        "type": "card",
        "card": {
            "number": number,
            "exp_month": 12,
            "exp_year": datetime.now(UTC).year + 1,
            "cvc": "123",
        },
    }
    try:
        pm = client.v1.payment_methods.create(params=params)
    except stripe.APIConnectionError as exc:
        raise CardNotMade(
            f"the Stripe emulator at {api_base} does not answer: is `tessera demo` running?"
        ) from exc
    except stripe.StripeError as exc:
        raise CardNotMade(f"the emulator refused the card: {exc.user_message or exc}") from exc
    details = pm.card
    return EmulatorCard(
        payment_method_id=pm.id,
        brand=str(details.brand if details else ""),
        last4=str(details.last4 if details else ""),
    )
