"""Concurrent refunds never exceed the captured amount (PostgreSQL, real localstripe)."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
import stripe
from django.db import connections

from tessera.billing.models import Refund
from tessera.billing.refunds import refund_transaction
from tessera.core.errors import ProblemError
from tessera.crm.matching.standard import install_standard_rules
from tessera.ledger.services import verify
from tessera.loyalty.credit import purchase_credit
from tests.support.loyalty import member, program
from tests.support.stripe import card

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_twenty_refunds_of_a_tenth_each_pay_out_exactly_ten(
    stripe_env: stripe.StripeClient,
) -> None:
    install_standard_rules()
    m = member(program(points_per_unit=100, low_balance_threshold=0))
    txn = purchase_credit(
        m.pk, amount=1000, currency="USD", payment_method_id=card(stripe_env)
    ).transaction
    barrier = threading.Barrier(20)
    outcomes: list[str] = []
    lock = threading.Lock()

    def refund() -> None:
        try:
            barrier.wait()
            try:
                refund_transaction(txn.pk, amount=100)
                result = "ok"
            except ProblemError as exc:
                result = exc.code
            with lock:
                outcomes.append(result)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=refund) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert Counter(outcomes) == {"ok": 10, "refund_exceeds_remaining": 10}
    txn.refresh_from_db()
    assert txn.refunded_amount == 1000
    assert Refund.objects.filter(status="succeeded").count() == 10
    ours = set(Refund.objects.values_list("stripe_refund_id", flat=True))
    at_stripe = [
        r.to_dict()
        for r in stripe_env.v1.refunds.list(params={"limit": 100}).auto_paging_iter()
        if r["id"] in ours
    ]
    assert sum(r["amount"] for r in at_stripe) == 1000
    assert verify().ok
