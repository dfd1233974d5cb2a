from __future__ import annotations

from django_tasks import task

from tessera.billing.reconcile import reconcile


@task()
def reconcile_task() -> int:
    """How many payments and refunds it settled."""
    report = reconcile()
    return report.settled + report.refunds_succeeded + report.refunds_failed
