"""Buying wallet credit by card: a Stripe payment whose settlement credits points once."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction as db
from django.db.models import Sum

from tessera.billing.models import Refund, Transaction
from tessera.billing.services import charge_card
from tessera.core.errors import ValidationFailed
from tessera.core.money import minor_unit_digits
from tessera.loyalty.models import Member, WalletTransaction
from tessera.loyalty.programs import get_member
from tessera.loyalty.wallet import move_points, restore_draws

PURPOSE = "wallet_topup"


@dataclass(frozen=True)
class CreditPurchase:
    """A card payment for wallet credit: captured (``succeeded``, with the wallet
    transaction of the points) or waiting for 3-D Secure (``requires_action``, with the
    client secret; the points come with the webhook)."""

    status: str  # "succeeded" or "requires_action"
    transaction: Transaction
    points: int
    wallet_transaction: WalletTransaction | None
    client_secret: str | None = None

    @property
    def transaction_id(self) -> str:
        return str(self.transaction.pk)

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


def points_for(member: Member, amount: int) -> int:
    """Points for ``amount`` minor units: the program's rate per major unit, rounded down."""
    return (
        amount * member.program.points_per_unit // 10 ** minor_unit_digits(member.program.currency)
    )


def settle_topup(txn: Transaction) -> None:
    """Credit the points of a captured top-up, exactly once (the ledger reference is the
    transaction), whoever gets here first: the API call, the webhook or the reconciler."""
    if txn.status != Transaction.Status.CAPTURED:
        return
    member = get_member(txn.purpose_id)
    move_points(
        member,
        type=WalletTransaction.Type.CREDIT_PURCHASED,
        points=points_for(member, txn.amount),
        reference=f"topup:{txn.pk}",
        counter=member.program.issuance_account,
        object_type="transaction",
        object_id=txn.pk,
        detail={"amount": txn.amount, "currency": txn.currency, "transaction_id": txn.pk},
    )


def refund_topup(txn: Transaction, refund: Refund) -> None:
    """A refunded top-up takes its points back; a failed refund gives them again. Points
    already spent cannot be refunded as money: the wallet must still hold them (402).

    Called under the transaction's row lock (refunds of one payment are serialised), and
    rounded on the running total, so that ten refunds of a tenth claw back exactly what one
    full refund would."""
    member = get_member(txn.purpose_id)
    if refund.status == Refund.Status.PENDING:
        before = (
            Refund.objects.filter(transaction=txn)
            .exclude(pk=refund.pk)
            .exclude(status=Refund.Status.FAILED)
            .aggregate(total=Sum("amount"))["total"]
            or 0
        )
        points = points_for(member, before + refund.amount) - points_for(member, before)
        if not points:
            return
        move_points(
            member, type=WalletTransaction.Type.CREDIT_REFUNDED, points=-points,
            reference=f"topup_refund:{refund.pk}", counter=member.program.issuance_account,
            object_type="refund", object_id=refund.pk,
            detail={"refund_id": refund.pk, "transaction_id": txn.pk, "amount": refund.amount,
                    "currency": txn.currency},
        )  # fmt: skip
    elif refund.status == Refund.Status.FAILED:
        by_reference = WalletTransaction.objects.filter
        taken = by_reference(journal_entry__reference=f"topup_refund:{refund.pk}").first()
        again = f"topup_refund_failed:{refund.pk}"
        if taken is None or by_reference(journal_entry__reference=again).exists():
            return  # nothing was taken back for this refund, or it was given back already
        # Back into the lots the points came from, with their expiry, not as new points.
        given = move_points(
            member, type=WalletTransaction.Type.CREDIT_REFUND_REVERSED, points=-taken.points,
            reference=again, counter=member.program.issuance_account,
            object_type="refund", object_id=refund.pk,
            detail={"refund_id": refund.pk, "transaction_id": txn.pk, "amount": refund.amount,
                    "currency": txn.currency, "reason": "the refund failed at Stripe"},
            new_lot=False,
        )  # fmt: skip
        restore_draws(member, taken, given)


def purchase_credit(
    member_id: str,
    *,
    amount: int,
    currency: str,
    payment_method_id: str,
    request_key: str | None = None,
) -> CreditPurchase:
    """Charge the card and credit the points once it is captured. Stripe is called outside
    any transaction of ours (rule 4); the points are settled here or by the webhook."""
    member = get_member(member_id)
    if currency != member.program.currency:
        raise ValidationFailed.field(
            "currency", f"this program sells credit in {member.program.currency}"
        )
    if points_for(member, amount) < 1:
        raise ValidationFailed.field("amount", "buys less than one point")
    txn, result = charge_card(
        contact=member.contact, amount=amount, currency=currency,
        payment_method_id=payment_method_id, purpose=PURPOSE, purpose_id=member.pk,
        request_key=request_key,
    )  # fmt: skip
    wtx = WalletTransaction.objects.filter(journal_entry__reference=f"topup:{txn.pk}").first()
    if txn.status == Transaction.Status.CAPTURED and wtx is None:
        with db.atomic():
            settle_topup(txn)
        wtx = WalletTransaction.objects.get(journal_entry__reference=f"topup:{txn.pk}")
    return CreditPurchase(
        status="succeeded" if txn.status == Transaction.Status.CAPTURED else "requires_action",
        transaction=txn,
        points=points_for(member, amount),
        wallet_transaction=wtx,
        client_secret=result.client_secret
        if result and result.status == "requires_action"
        else None,
    )
