"""Periodic tasks (point expiry, clean-up, reconciliation) and the heartbeat of the
background worker.

``settings.TESSERA_PERIODIC_TASKS`` maps a name to (task path, interval seconds). A worker
calls ``enqueue_due()`` every few seconds; a due job is claimed by a conditional UPDATE and
enqueued in the same transaction, so many workers never enqueue the same run twice."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

from tessera.core.health import forget_old_heartbeats, record_heartbeat, worker_name
from tessera.core.logs import follow_tasks
from tessera.core.models import ScheduledJob

logger = logging.getLogger(__name__)


def enqueue_due() -> list[str]:
    now = timezone.now()
    enqueued = []
    for name, (path, seconds) in settings.TESSERA_PERIODIC_TASKS.items():
        job, _ = ScheduledJob.objects.get_or_create(name=name, defaults={"next_run_at": now})
        if job.next_run_at > now:
            continue
        with transaction.atomic():
            claimed = ScheduledJob.objects.filter(name=name, next_run_at=job.next_run_at).update(
                next_run_at=now + timedelta(seconds=seconds), last_enqueued_at=now
            )
            if claimed:
                import_string(path).enqueue()
                enqueued.append(name)
    return enqueued


def run_in_background(stop: threading.Event, every: float = 15.0) -> threading.Thread:
    """The worker's periodic loop: each tick beats the worker's heartbeat (``/readyz``
    reads it) and enqueues the periodic jobs that are due."""
    follow_tasks()  # this process runs tasks: their log lines name them
    name = worker_name()

    def loop() -> None:
        try:
            forget_old_heartbeats()
        except Exception:  # housekeeping only; the beats below still matter
            logger.exception("could not prune old worker heartbeats")
        while not stop.is_set():
            try:
                record_heartbeat(name)
            except Exception:  # apart, so a failed beat never skips the jobs due
                logger.exception("worker heartbeat failed")
            try:
                for job in enqueue_due():
                    logger.info("scheduled %s", job)
            except Exception:  # a bad tick must not kill the worker; the next one retries
                logger.exception("scheduler tick failed")
            finally:
                close_old_connections()
            stop.wait(every)

    thread = threading.Thread(target=loop, name="tessera-scheduler", daemon=True)
    thread.start()
    return thread
