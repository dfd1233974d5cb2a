"""Repairing what a crash or a lost webhook left pending: ask Stripe and settle.

Payments left ``pending``/``authorized`` and refunds left ``pending`` are settled through
the same functions the API and the webhook use (``apply_result``, ``confirm_refund``,
``fail_refund``), which lock the row and act only on a pending one: whoever gets there
first posts to the ledger, and a second run changes nothing. Stripe is asked outside any
database transaction (rule 4)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

from django.utils import timezone

from tessera.billing.gateways.base import (
    Gateway,
    GatewayRejected,
    GatewayUnavailable,
    PaymentResult,
    RefundResult,
)
from tessera.billing.gateways.stripe import get_gateway
from tessera.billing.models import Refund, Transaction
from tessera.billing.refunds import (
    RefundCreateRefused,
    ask_stripe_about,
    fail_refund,
    record_refund_result,
)
from tessera.billing.services import NOT_FOUND_AT_STRIPE, record_result

R = TypeVar("R")

OPEN = (Transaction.Status.PENDING, Transaction.Status.AUTHORIZED)
# How long a payment Stripe has no record of stays pending before it is canceled: Stripe's
# search is eventually consistent (usually within a minute, up to an hour in an outage).
NOT_FOUND_GRACE = timedelta(hours=1)


@dataclass
class ReconcileReport:
    checked: int = 0
    settled: int = 0
    unchanged: int = 0
    unreachable: int = 0
    refunds_checked: int = 0
    refunds_succeeded: int = 0
    refunds_failed: int = 0
    refunds_unchanged: int = 0
    refunds_unreachable: int = 0
    lines: list[str] = field(default_factory=list)

    def no_answer(self, line: str, *, unreachable: bool, refund: bool) -> None:
        """Count one payment (or refund) that Stripe gave no usable answer about."""
        self.lines.append(line)
        if refund and unreachable:
            self.refunds_unreachable += 1
        elif refund:
            self.refunds_unchanged += 1
        elif unreachable:
            self.unreachable += 1
        else:
            self.unchanged += 1


class _NoAnswer:
    """Stripe could not be asked, or refused the question: counted, and the run goes on."""


NO_ANSWER = _NoAnswer()


def _ask(
    report: ReconcileReport, subject: str, left: str, ask: Callable[[], R], *, refund: bool
) -> R | _NoAnswer:
    """What ``ask`` gets from Stripe about ``subject`` (left in status ``left`` when there
    is no answer)."""
    try:
        return ask()
    except GatewayUnavailable as exc:
        report.no_answer(f"{subject}: Stripe unreachable ({exc})", unreachable=True, refund=refund)
    except GatewayRejected as exc:
        # Stripe does not know the id we saved (or would not list a payment's refunds):
        # money may have moved, so a person must look.
        line = f"{subject}: Stripe refused ({exc}); left {left}"
        report.no_answer(line, unreachable=False, refund=refund)
    return NO_ANSWER


def reconcile(
    *, since: timedelta = timedelta(hours=24), min_age: timedelta = timedelta(minutes=5)
) -> ReconcileReport:
    now = timezone.now()
    report = ReconcileReport()
    txns = list(
        Transaction.objects.filter(
            status__in=OPEN, created_at__gte=now - since, created_at__lte=now - min_age
        ).order_by("pk")
    )
    gateway = get_gateway()
    unsaved = _find_unsaved(gateway, txns)
    for txn in txns:
        report.checked += 1
        ask = partial(_stripe_answer, gateway, txn, unsaved, now)
        result = _ask(report, txn.pk, txn.status, ask, refund=False)
        if isinstance(result, _NoAnswer):
            continue
        if result is None:
            report.unchanged += 1
            report.lines.append(f"{txn.pk}: not found at Stripe yet; left pending")
            continue
        update = record_result(txn.pk, result)
        if update.changed:
            report.settled += 1
            report.lines.append(f"{txn.pk}: {txn.status} -> {update.transaction.status}")
        else:
            report.unchanged += 1
    _reconcile_refunds(report, gateway, since=now - since, until=now - min_age)
    return report


def _find_unsaved(
    gateway: Gateway, txns: list[Transaction]
) -> dict[str, PaymentResult] | GatewayUnavailable:
    """The PaymentIntents of the transactions whose Stripe id we never saved (we crashed or
    timed out after Stripe acted), found by the transaction id in their metadata: asked
    once for the whole run, as Stripe may have to list its payments to answer."""
    ids = [txn.pk for txn in txns if not txn.stripe_payment_intent_id]
    try:
        return gateway.find_by_transactions(ids) if ids else {}
    except GatewayUnavailable as exc:  # each of them is reported unreachable
        return exc


def _stripe_answer(
    gateway: Gateway,
    txn: Transaction,
    unsaved: dict[str, PaymentResult] | GatewayUnavailable,
    now: datetime,
) -> PaymentResult | None:
    """What Stripe says of ``txn``; None while a payment not found may still show up."""
    if txn.stripe_payment_intent_id:
        return gateway.retrieve(txn.stripe_payment_intent_id)
    if isinstance(unsaved, GatewayUnavailable):
        raise unsaved
    result = unsaved.get(txn.pk)
    if result is None and txn.created_at > now - NOT_FOUND_GRACE:
        # Stripe's search can lag behind its payments: not finding ours yet does not mean
        # there is none. Ask again on a later run.
        return None
    if result is None:
        result = PaymentResult(
            "canceled", None, failure_code=NOT_FOUND_AT_STRIPE,
            failure_message="no payment at Stripe for this transaction",
        )  # fmt: skip
    return result


def _reconcile_refunds(
    report: ReconcileReport, gateway: Gateway, *, since: datetime, until: datetime
) -> None:
    """Refunds left pending: our commit happened but Stripe's answer was lost (timeout,
    crash) or the ``charge.refund.updated`` webhook never came."""
    pending = Refund.objects.filter(
        status=Refund.Status.PENDING, created_at__gte=since, created_at__lte=until
    ).values_list("pk", flat=True)
    for refund_id in list(pending):
        report.refunds_checked += 1
        refund = Refund.objects.select_related("transaction").get(pk=refund_id)
        answer = _ask(report, refund.pk, "pending", partial(_refund_answer, gateway, refund),
                      refund=True)  # fmt: skip
        if isinstance(answer, _NoAnswer):
            continue
        if isinstance(answer, RefundCreateRefused):
            # No refund of ours exists at Stripe and it will not make one: nothing was
            # paid out, so release the reservation like the API does.
            changed = fail_refund(refund.pk, str(answer))
        else:
            changed = record_refund_result(refund.pk, answer)
        if not changed:
            report.refunds_unchanged += 1
            continue
        refund.refresh_from_db()
        if refund.status == Refund.Status.SUCCEEDED:
            report.refunds_succeeded += 1
        else:
            report.refunds_failed += 1
        report.lines.append(f"{refund.pk}: pending -> {refund.status}")


def _refund_answer(gateway: Gateway, refund: Refund) -> RefundResult | RefundCreateRefused:
    """What Stripe did with the refund, or that it has none and refuses to make one."""
    try:
        return ask_stripe_about(gateway, refund)
    except RefundCreateRefused as exc:
        return exc
