"""The ledger's row locks. Every lock on a ledger account is taken here, in primary-key
order, so that two postings over the same accounts always queue and never deadlock
(rule 3)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection

from tessera.ledger.models import LedgerAccount


def lock_accounts(pks: Iterable[str]) -> dict[str, int]:
    """Lock these accounts' rows (``SELECT ... FOR UPDATE``) in primary-key order and return
    each one's balance as it stands under the lock.

    Must run inside ``transaction.atomic()``: the locks are held to the end of that
    transaction, and outside one they would be released as soon as they were taken."""
    if not connection.in_atomic_block:
        raise RuntimeError("lock_accounts() belongs inside transaction.atomic()")
    ordered = sorted(set(pks))
    if not ordered:
        return {}
    return {
        account.pk: account.balance
        for account in LedgerAccount.objects.select_for_update()
        .filter(pk__in=ordered)
        .order_by("pk")
        .only("id", "balance")
    }
