"""Billing's row locks refuse to run outside a database transaction: a lock taken there
would end with its own statement and protect nothing (PostgreSQL only: SQLite has no
row locks)."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.db.transaction import TransactionManagementError

from tessera.billing.lock_objects import lock_refund, lock_transaction
from tessera.billing.models import Transaction
from tessera.crm.models import Contact

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def txn() -> Transaction:
    contact = Contact.objects.create(first_name="Ada", last_name="Lovelace", email="a@example.com")
    return Transaction.objects.create(
        contact=contact, amount=1000, currency="USD", purpose="test_locks", purpose_id="x"
    )


def test_locking_a_payment_outside_a_transaction_is_refused(txn: Transaction) -> None:
    with pytest.raises(TransactionManagementError):
        lock_transaction(txn.pk)


def test_locking_a_payment_inside_a_transaction_returns_it(txn: Transaction) -> None:
    with transaction.atomic():
        assert lock_transaction(txn.pk).pk == txn.pk


def test_locking_a_refund_outside_a_transaction_is_refused(txn: Transaction) -> None:
    refund = txn.refunds.create(amount=100)
    with pytest.raises(TransactionManagementError):
        lock_refund(refund.pk)
