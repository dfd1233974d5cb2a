from __future__ import annotations

from django_tasks import task

from tessera.core.idempotency import prune_idempotency_keys


@task()
def prune_idempotency_keys_task() -> int:
    return prune_idempotency_keys()
