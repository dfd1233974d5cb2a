from __future__ import annotations

from django_tasks import task

from tessera.loyalty.adjustments import expire_points


@task()
def expire_points_task() -> int:
    return expire_points()
