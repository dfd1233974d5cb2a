"""Who settles a captured (or failed) payment. Billing knows no loyalty or events: each
owning app registers, at start-up, the function that settles its purpose. The API response,
the webhook and the reconciler all settle through it, so it must be idempotent."""

from __future__ import annotations

from collections.abc import Callable

from tessera.billing.models import Refund, Transaction

Settler = Callable[[Transaction], None]
RefundSettler = Callable[[Transaction, Refund], None]
_settlers: dict[str, Settler] = {}
_refund_settlers: dict[str, RefundSettler] = {}


def register_settler(
    purpose: str, settler: Settler, on_refund: RefundSettler | None = None
) -> None:
    _settlers[purpose] = settler
    if on_refund is not None:
        _refund_settlers[purpose] = on_refund


def settle_refund(transaction: Transaction, refund: Refund) -> None:
    """Let the owner reverse (refund pending) or restore (refund failed) what it gave."""
    settler = _refund_settlers.get(transaction.purpose)
    if settler is not None:
        settler(transaction, refund)


def settle(transaction: Transaction) -> None:
    settler = _settlers.get(transaction.purpose)
    if settler is None:
        raise LookupError(f"no settler registered for {transaction.purpose!r}")
    settler(transaction)
