"""Staff adjustments and point expiry."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from tessera.core.errors import ValidationFailed
from tessera.core.ids import new_id
from tessera.loyalty.lock_objects import lock_wallet
from tessera.loyalty.models import PointLot, WalletTransaction
from tessera.loyalty.programs import get_member
from tessera.loyalty.wallet import move_points


@transaction.atomic
def adjust_points(member_id: str, *, points: int, reason: str, by: str = "") -> WalletTransaction:
    """A staff correction, up or down; never below a zero balance (402)."""
    if points == 0:
        raise ValidationFailed.field("points", "must not be zero")
    if not reason.strip():
        raise ValidationFailed.field("reason", "is required")
    member = get_member(member_id)
    program = member.program
    adjustment_id = new_id("adj")
    return move_points(
        member,
        type=WalletTransaction.Type.ADJUSTMENT,
        points=points,
        reference=f"adjustment:{adjustment_id}",
        counter=program.issuance_account if points > 0 else program.redemption_account,
        object_type="adjustment",
        object_id=adjustment_id,
        detail={"reason": reason.strip(), "by": by},
    )


def expire_points(now: datetime | None = None) -> int:
    """Post ``points_expired`` for every earned lot past its expiry. Overlapping runs
    expire nothing twice: each locks the wallet before reading the lots, and the ledger
    reference names the lot and its draws so far."""
    now = now or timezone.now()
    expired = 0
    due = (
        PointLot.objects.filter(expires_at__lte=now, remaining__gt=0)
        .values_list("member_id", flat=True)
        .distinct()
    )
    for member_id in list(due):
        with transaction.atomic():
            member = get_member(member_id)
            # Lock the wallet first, then read the lots: spending cannot race the expiry.
            lock_wallet(member)
            for lot in PointLot.objects.filter(
                member=member, expires_at__lte=now, remaining__gt=0
            ).order_by("id"):
                move_points(
                    member,
                    type=WalletTransaction.Type.POINTS_EXPIRED,
                    points=-lot.remaining,
                    # Per lot and per draw so far: a refund can put points back into a
                    # lot that has already expired once, and those must expire too.
                    reference=f"expiry:{lot.pk}:{lot.draws.count()}",
                    counter=member.program.redemption_account,
                    object_type="point_lot",
                    object_id=str(lot.pk),
                    detail={
                        "earned_at": lot.created_at.isoformat(),
                        "expires_at": lot.expires_at.isoformat() if lot.expires_at else None,
                    },
                    draw_from=lot,
                )
                expired += lot.remaining
    return expired
