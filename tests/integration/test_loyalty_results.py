"""What loyalty's services return: typed results carrying the movement and the balance
after it, so that no caller works the balance out again."""

from __future__ import annotations

import pytest

from tessera.loyalty.activities import complete_activity
from tessera.loyalty.adjustments import adjust_points
from tessera.loyalty.ordering import OrderLineSpec, place_order, refund_order
from tessera.loyalty.programs import enroll_member
from tessera.loyalty.wallet import WalletBalance, wallet_balance
from tests.support.loyalty import member, product, program, question

pytestmark = pytest.mark.django_db


def test_place_order_returns_the_payment_and_the_balance_after_it() -> None:
    prog = program()
    m = member(prog, points=500)
    result = place_order(m.pk, [OrderLineSpec(product(prog, 120).pk, 2)])
    assert (result.wallet_transaction.points, result.balance_after) == (-240, 260)
    assert result.order.wallet_transaction_id == result.wallet_transaction.pk


def test_refund_order_returns_the_refund_movement() -> None:
    prog = program()
    m = member(prog, points=500)
    placed = place_order(m.pk, [OrderLineSpec(product(prog, 100).pk, 1)])
    refunded = refund_order(placed.order.pk)
    assert (refunded.wallet_transaction.type, refunded.balance_after) == ("order_refunded", 500)


def test_a_wrong_answer_returns_no_movement_and_the_current_balance() -> None:
    prog = program()
    m = member(prog, points=40)
    result = complete_activity(m.pk, question(prog, points=10).pk, answer="Lyon")
    assert (result.wallet_transaction, result.balance_after) == (None, 40)


def test_a_right_answer_returns_its_points_and_the_balance_after_them() -> None:
    prog = program()
    m = member(prog, points=40)
    result = complete_activity(m.pk, question(prog, points=10).pk, answer="paris")
    assert result.wallet_transaction is not None
    assert (result.wallet_transaction.points, result.balance_after) == (10, 50)


def test_enrolling_twice_returns_the_same_membership_not_created() -> None:
    prog = program()
    m = member(prog)
    again = enroll_member(prog.pk, contact_id=m.contact_id)
    assert (again.member.pk, again.created) == (m.pk, False)


def test_wallet_balance_reads_the_balance_as_committed_not_as_loaded() -> None:
    prog = program(low_balance_threshold=50)
    m = member(prog, points=100)
    adjust_points(m.pk, points=-30, reason="spent elsewhere")
    assert wallet_balance(m) == WalletBalance(balance=70, low_balance_threshold=50)
