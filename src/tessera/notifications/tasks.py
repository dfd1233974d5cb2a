from __future__ import annotations

from django_tasks import task

from tessera.notifications.services import deliver_email, requeue_stalled


@task(queue_name="default")
def send_email(email_id: str) -> str:
    return deliver_email(email_id)


@task(queue_name="default")
def requeue_stalled_task() -> int:
    return requeue_stalled()
