"""Every movement of a member's points goes through ``move_points``: one balanced ledger
entry, one wallet transaction, the FIFO lots, the timeline, the low-balance alert."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from tessera.core.money import POINTS
from tessera.crm.services import record_timeline
from tessera.ledger.models import LedgerAccount
from tessera.ledger.services import Leg, post
from tessera.loyalty import alerts
from tessera.loyalty.models import LotDraw, Member, PointLot, WalletTransaction

T = WalletTransaction.Type


@dataclass(frozen=True)
class WalletBalance:
    balance: int
    low_balance_threshold: int
    currency: str = POINTS


def wallet_balance(member: Member) -> WalletBalance:
    """The wallet's balance as committed now (re-read: the member may have been loaded
    before a movement), with the program's low-balance threshold."""
    member.wallet.refresh_from_db(fields=["balance"])
    return WalletBalance(member.wallet.balance, member.program.low_balance_threshold)


def wallet_transactions(member: Member) -> QuerySet[WalletTransaction]:
    """Every point the member earned and spent (the caller pages them, newest first)."""
    return WalletTransaction.objects.filter(member=member)


def move_points(
    member: Member,
    *,
    type: str,
    points: int,
    reference: str,
    counter: LedgerAccount,
    object_type: str = "",
    object_id: str = "",
    detail: dict[str, Any] | None = None,
    expires: bool = False,
    draw_from: PointLot | None = None,
    new_lot: bool = True,
) -> WalletTransaction:
    """Credit (points > 0) or debit (points < 0) the member's wallet.

    Idempotent on ``reference``: the second call returns the first wallet transaction. A
    debit beyond the balance raises ``InsufficientFunds`` (402) and writes nothing."""
    if points == 0:
        raise ValueError("a wallet movement moves points")
    with nullcontext() if connection.in_atomic_block else transaction.atomic():
        entry, balances = post(
            kind=type,
            reference=reference,
            legs=[Leg(member.wallet, points), Leg(counter, -points)],
            memo=f"{T(type).label} {points:+d} PTS",
            object_type=object_type,
            object_id=object_id,
        )
        if not balances:  # already posted: return what the first call wrote
            return WalletTransaction.objects.get(journal_entry=entry)
        after = balances[member.wallet_id]
        wtx = WalletTransaction.objects.create(
            member=member, type=type, points=points, balance_after=after,
            reference=object_id or reference, detail=detail or {}, journal_entry=entry,
        )  # fmt: skip
        if points > 0:
            if new_lot:  # a refund puts points back into the lots they came from instead
                _add_lot(member, wtx, points, expires)
        else:
            _draw(member, wtx, -points, draw_from)
        record_timeline(
            member.contact,
            kind="wallet_transaction",
            obj=wtx,
            summary=f"{wtx.label}: {points:+,d} points (balance {after:,d})",
            data={"type": type, "points": points, "balance_after": after, "member_id": member.pk},
        )
        alerts.after_movement(member, before=after - points, after=after)
        return wtx


def _add_lot(member: Member, wtx: WalletTransaction, points: int, expires: bool) -> None:
    days = member.program.points_expire_after_days
    expires_at = timezone.now() + timedelta(days=days) if expires and days else None
    PointLot.objects.create(
        member=member, source=wtx, points=points, remaining=points, expires_at=expires_at
    )


def _draw(member: Member, wtx: WalletTransaction, points: int, lot: PointLot | None) -> None:
    """Take ``points`` from the member's lots, oldest first (the wallet row is locked, so
    the lots cannot change under us)."""
    lots = (
        [lot]
        if lot is not None
        else PointLot.objects.filter(member=member, remaining__gt=0).order_by("id")
    )
    left = points
    draws = []
    for current in lots:
        if left == 0:
            break
        take = min(current.remaining, left)
        if take <= 0:
            continue
        PointLot.objects.filter(pk=current.pk).update(remaining=current.remaining - take)
        draws.append(LotDraw(lot=current, debit=wtx, points=take))
        left -= take
    if left:
        # The ledger allowed the debit, so the lots must cover it; if not, they drifted.
        raise RuntimeError(f"lots of {member.pk} are {left} points short of the balance")
    LotDraw.objects.bulk_create(draws)


def restore_draws(member: Member, debit: WalletTransaction, refund: WalletTransaction) -> None:
    """Put a refunded debit's points back into the lots it came from."""
    for draw in LotDraw.objects.filter(debit=debit):
        PointLot.objects.filter(pk=draw.lot_id).update(remaining=F("remaining") + draw.points)
