"""Hypothesis: any sequence of earn / order / refund / adjust / expire keeps every balance
equal to the sum of its postings, every entry balanced, no wallet negative, and the FIFO
lots summing to the wallet balance."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tessera.core.errors import ProblemError
from tessera.ledger.services import verify
from tessera.loyalty.activities import complete_activity
from tessera.loyalty.adjustments import adjust_points, expire_points
from tessera.loyalty.models import Order, PointLot
from tessera.loyalty.ordering import OrderLineSpec, place_order, refund_order
from tests.support.loyalty import balance, member, product, program, question

pytestmark = pytest.mark.django_db

op = st.one_of(
    st.tuples(st.just("earn"), st.integers(0, 2), st.integers(1, 500)),
    st.tuples(st.just("order"), st.integers(0, 2), st.integers(1, 4)),
    st.tuples(st.just("refund"), st.integers(0, 50), st.just(0)),
    st.tuples(st.just("adjust"), st.integers(0, 2), st.integers(-300, 300)),
    st.tuples(st.just("age"), st.integers(0, 2), st.just(0)),
    st.tuples(st.just("expire"), st.just(0), st.just(0)),
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=st.lists(op, min_size=1, max_size=25))
def test_any_sequence_keeps_the_books_straight(ops: list[tuple[str, int, int]]) -> None:
    prog = program(points_expire_after_days=30, low_balance_threshold=100)
    members = [
        member(prog, email=f"m{i}-{timezone.now().timestamp()}@example.com") for i in range(3)
    ]
    mug = product(prog, 70, stock=20)
    for i, (kind, who, amount) in enumerate(ops):
        m = members[who % 3]
        try:
            if kind == "earn":
                complete_activity(
                    m.pk, question(prog, points=amount, title=f"q{i}").pk, answer="Paris"
                )
            elif kind == "order":
                place_order(m.pk, [OrderLineSpec(mug.pk, amount)])
            elif kind == "refund":
                orders = list(
                    Order.objects.filter(member__program=prog, status="placed").order_by("id")
                )
                if orders:
                    refund_order(orders[who % len(orders)].pk)
            elif kind == "adjust" and amount:
                adjust_points(m.pk, points=amount, reason="test")
            elif kind == "age":
                PointLot.objects.filter(member=m).update(
                    expires_at=timezone.now() - timedelta(seconds=1)
                )
            elif kind == "expire":
                expire_points()
        except ProblemError:
            pass  # refused (insufficient balance, sold out): must leave the books unchanged
        report = verify()
        assert report.ok, (report.balance_mismatches, report.unbalanced_entries)
        for mm in members:
            lots = (
                PointLot.objects.filter(member=mm).aggregate(total=Sum("remaining"))["total"] or 0
            )
            assert balance(mm) >= 0
            assert lots == balance(mm)
