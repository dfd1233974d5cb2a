"""Repairing what a crash or a lost webhook left pending: ask Stripe and settle."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.db import transaction as db
from django.utils import timezone

from tessera.billing.gateways.base import GatewayUnavailable, PaymentResult
from tessera.billing.gateways.stripe import get_gateway
from tessera.billing.models import Transaction
from tessera.billing.services import apply_result

OPEN = (Transaction.Status.PENDING, Transaction.Status.AUTHORIZED)


@dataclass
class ReconcileReport:
    checked: int = 0
    settled: int = 0
    unchanged: int = 0
    unreachable: int = 0
    lines: list[str] = field(default_factory=list)


def reconcile(
    *, since: timedelta = timedelta(hours=24), min_age: timedelta = timedelta(minutes=5)
) -> ReconcileReport:
    now = timezone.now()
    report = ReconcileReport()
    open_ids = Transaction.objects.filter(
        status__in=OPEN, created_at__gte=now - since, created_at__lte=now - min_age
    ).values_list("pk", flat=True)
    gateway = get_gateway()
    for txn_id in list(open_ids):
        report.checked += 1
        txn = Transaction.objects.get(pk=txn_id)
        try:
            if txn.stripe_payment_intent_id:
                result = gateway.retrieve(txn.stripe_payment_intent_id)
            else:
                # We crashed before saving Stripe's id. Creating again with the same
                # idempotency key returns the original PaymentIntent (or, if Stripe never
                # got the first call, makes it: the customer asked to pay).
                found = getattr(gateway, "find_by_transaction", None)
                result = found(txn.pk) if found else None
                if result is None:
                    result = PaymentResult("canceled", None)
        except GatewayUnavailable as exc:
            report.unreachable += 1
            report.lines.append(f"{txn.pk}: Stripe unreachable ({exc})")
            continue
        with db.atomic():
            locked = Transaction.objects.select_for_update().get(pk=txn.pk)
            changed = apply_result(locked, result)
        if changed:
            report.settled += 1
            report.lines.append(f"{txn.pk}: {txn.status} -> {locked.status}")
        else:
            report.unchanged += 1
    return report
