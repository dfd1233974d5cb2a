from __future__ import annotations

import pytest
from django.db import transaction

from tessera.ledger.lock_objects import lock_accounts
from tessera.ledger.models import LedgerAccount
from tessera.ledger.services import get_or_create_account

pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)  # no test-wide transaction around it
def test_lock_accounts_refuses_to_run_outside_a_transaction() -> None:
    wallet = get_or_create_account("w1", name="wallet", asset="PTS")
    with pytest.raises(RuntimeError, match=r"inside transaction\.atomic"):
        lock_accounts([wallet.pk])


def test_lock_accounts_returns_the_balance_of_each_account_asked_for() -> None:
    a = get_or_create_account("a", name="a", asset="PTS")
    b = get_or_create_account("b", name="b", asset="PTS", allow_negative=True)
    LedgerAccount.objects.filter(pk=a.pk).update(balance=7)
    with transaction.atomic():
        assert lock_accounts([b.pk, a.pk, b.pk]) == {a.pk: 7, b.pk: 0}
