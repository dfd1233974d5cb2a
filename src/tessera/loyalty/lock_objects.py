"""Loyalty's row locks, each taken in primary-key order (rule 3). A wallet is a ledger
account, so its lock is the ledger's (``ledger.lock_objects.lock_accounts``). Every lock here
must be taken inside ``transaction.atomic()``: it is held to the end of that transaction."""

from __future__ import annotations

from collections.abc import Iterable

from tessera.ledger.lock_objects import lock_accounts
from tessera.loyalty.models import Member, Order, Product


def lock_wallet(member: Member) -> int:
    """Lock the member's wallet and return its balance: what spends from the wallet or
    reads its lots waits for this until the transaction ends."""
    return lock_accounts([member.wallet_id])[member.wallet_id]


def lock_order(order_id: str) -> Order:
    """Re-read the order under its row lock, with its member, program and contact."""
    return (
        Order.objects.select_for_update()
        .select_related("member__program", "member__contact")
        .get(pk=order_id)
    )


def lock_stocked_products(product_ids: Iterable[str]) -> list[Product]:
    """Lock those of these products that keep a stock count, by primary key. Products
    without stock are never locked: every order of every member would wait on them."""
    return list(
        Product.objects.select_for_update()
        .filter(pk__in=list(product_ids), stock__isnull=False)
        .order_by("pk")
    )
