from __future__ import annotations

from django_tasks import task

from tessera.crm.matching.services import rebuild_match_keys


@task()
def rebuild_match_keys_task(object_type: str) -> int:
    return rebuild_match_keys(object_type)
