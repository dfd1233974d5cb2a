from __future__ import annotations

from django_tasks import task

from tessera.billing.reconcile import reconcile
from tessera.billing.refunds import check_refund_failure


@task()
def reconcile_task() -> int:
    """How many payments and refunds it settled."""
    report = reconcile()
    return report.settled + report.refunds_succeeded + report.refunds_failed


@task()
def check_refund_failure_task(refund_id: str) -> bool:
    """Whether Stripe confirmed the failure of a paid-out refund, which is then reversed."""
    return check_refund_failure(refund_id)
