"""Rule 7: no card number or CVC reaches our database or our logs. Every payment path runs
here (success, decline, 3-D Secure and its webhook, capture later, refunds, a lost answer
repaired by reconcile) with all logging captured at DEBUG, then every table of the test
database and every captured log line is searched for the card numbers and the CVC."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
import stripe
from django.db import connection

from tessera.billing.models import Transaction
from tests.support.api import Api
from tests.support.billing import TimeoutAfterCharge, reconcile
from tests.support.loyalty import member, program
from tests.support.stripe import UseGateway, card, pi_event, signed

pytestmark = pytest.mark.django_db

NUMBERS = ("4242424242424242", "4000000000000002", "4000002760003184")
# Distinctive enough to search for as a standalone token (ids, amounts and timestamps used
# here never are exactly 739).
CVC = "739"
CVC_TOKEN = re.compile(rf"(?<![\w.]){CVC}(?![\w.])")
CVC_FIELD = re.compile(r"cvc['\"]?\s*[:=]", re.IGNORECASE)


def leaks(text: str) -> list[str]:
    found = [n for n in NUMBERS if n in text]
    if CVC_TOKEN.search(text):
        found.append(f"cvc value {CVC}")
    if CVC_FIELD.search(text):
        found.append("a cvc field")
    return found


def database_dump() -> dict[str, str]:
    with connection.cursor() as cur:
        dump = {}
        for table in connection.introspection.table_names(cur):
            cur.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - our own table names
            dump[table] = repr(cur.fetchall())
    return dump


def test_no_card_number_or_cvc_in_database_or_logs(
    api: Api,
    admin_api: Api,
    stripe_env: stripe.StripeClient,
    use_gateway: UseGateway,
    caplog: pytest.LogCaptureFixture,
) -> None:
    m = member(program(points_per_unit=100, low_balance_threshold=0))
    # The browser's part (Stripe.js talks to Stripe, not to us), before we listen.
    ok, declined, three_ds, held, lost = (
        card(stripe_env, NUMBERS[0], CVC),
        card(stripe_env, NUMBERS[1], CVC),
        card(stripe_env, NUMBERS[2], CVC),
        card(stripe_env, NUMBERS[0], CVC),
        card(stripe_env, NUMBERS[0], CVC),
    )

    def buy(pm: str, amount: int) -> Any:
        return api.post(
            f"/members/{m.pk}/credit-purchases",
            {"amount": amount, "currency": "USD", "payment_method_id": pm},
        )

    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="stripe"):
        assert buy(ok, 1000).status_code == 201
        assert buy(declined, 500).status_code == 402
        r = buy(three_ds, 900)
        assert r.status_code == 202
        pending = Transaction.objects.get(pk=json.loads(r.content)["transaction_id"])
        payload, sig = signed(
            pi_event("evt_h1", "payment_intent.succeeded", str(pending.stripe_payment_intent_id),
                     900, pending.pk)
        )  # fmt: skip
        assert api.client.post("/api/v1/webhooks/stripe", payload, content_type="application/json",
                               headers={"Stripe-Signature": sig}).status_code == 200  # fmt: skip

        from tessera.billing.services import capture_transaction, charge_card

        txn, _ = charge_card(contact=m.contact, amount=1200, currency="USD", payment_method_id=held,
                             purpose="wallet_topup", purpose_id=m.pk, capture=False)  # fmt: skip
        assert capture_transaction(txn.pk).status == "captured"
        paid = Transaction.objects.filter(status="captured").order_by("created_at").first()
        assert paid is not None
        refund = admin_api.post(f"/transactions/{paid.pk}/refunds", {"amount": 300})
        assert refund.status_code == 201, refund.content

        with use_gateway(TimeoutAfterCharge()):
            assert buy(lost, 700).status_code == 502
        reconcile(since="1h")

    assert Transaction.objects.filter(status="captured").count() == 4
    assert caplog.records, "nothing was logged: the search below would prove nothing"
    # The search can find what it looks for (guards against a vacuous pass).
    assert leaks(f"{NUMBERS[1]} cvc: {CVC}") == [NUMBERS[1], f"cvc value {CVC}", "a cvc field"]

    log_text = "\n".join(
        f"{r.name} {r.getMessage()} {r.__dict__.get('args')!r}" for r in caplog.records
    )
    assert leaks(log_text) == []
    dump = database_dump()
    assert "billing_paymentmethod" in dump
    assert "4242" in dump["billing_paymentmethod"]
    assert {table: found for table in dump if (found := leaks(dump[table]))} == {}
