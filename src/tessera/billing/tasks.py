from __future__ import annotations

from django_tasks import task

from tessera.billing.reconcile import reconcile


@task()
def reconcile_task() -> int:
    return reconcile().settled
