"""The Redis task queue (``TESSERA_TASKS_BACKEND=rq``): a backend that pushes a job only when
its transaction commits, and the worker class ``tessera worker`` runs for it."""

from __future__ import annotations

from functools import partial
from typing import Any

import django_rq
from django.db import close_old_connections, transaction
from django_tasks import TaskResult, TaskResultStatus
from django_tasks.base import TASK_MAX_PRIORITY, Task
from django_tasks.signals import task_enqueued
from django_tasks.utils import get_random_id
from django_tasks_rq.backend import Job, RQBackend, failed_callback, success_callback
from redis import Redis
from rq.job import Callback, JobStatus
from rq.worker import SimpleWorker


class OnCommitRQBackend(RQBackend):
    """django_tasks_rq's backend, except that a job enqueued inside a transaction is pushed
    to Redis when that transaction commits, and not at all if it rolls back.

    django_tasks_rq pushes at once (``Queue.enqueue_job``, which django_rq's own commit mode
    does not defer). A worker could then run the job before the row it names is committed:
    ``deliver_email`` would find no email and the email would never be sent. Unlike the
    database backend this is not an outbox: a crash (or Redis down) between the commit and
    the push loses the job, and the failed push is logged (``robust``), not raised into a
    request whose change has already committed.
    """

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        # django_rq opens a new client (and pool) per get_queue() call: keep one per queue.
        self._redis: dict[str, Redis] = {}

    def enqueue(self, task: Task, args: Any, kwargs: Any) -> TaskResult:
        self.validate_task(task)  # a bad task fails in the caller, not after its commit
        result: TaskResult = TaskResult(
            task=task, id=get_random_id(), status=TaskResultStatus.READY, enqueued_at=None,
            started_at=None, last_attempted_at=None, finished_at=None, args=args,
            kwargs=kwargs, backend=self.alias, errors=[], worker_ids=[],
        )  # fmt: skip
        if transaction.get_connection().in_atomic_block:
            transaction.on_commit(partial(self._push, result), robust=True)
        else:
            self._push(result)
        return result

    def _push(self, result: TaskResult) -> None:
        """What RQBackend.enqueue does once it has made its result, keeping our id."""
        task = result.task
        queue = django_rq.get_queue(
            task.queue_name, job_class=Job, connection=self._connection(task.queue_name)
        )
        job = queue.create_job(
            task.module_path, args=result.args, kwargs=result.kwargs, job_id=result.id,
            status=JobStatus.SCHEDULED if task.run_after else JobStatus.QUEUED,
            on_failure=Callback(failed_callback), on_success=Callback(success_callback),
            meta={"backend_name": self.alias},
        )  # fmt: skip
        if task.run_after is None:
            job = queue.enqueue_job(job, at_front=task.priority == TASK_MAX_PRIORITY)
        else:
            job = queue.schedule_job(job, task.run_after)
        object.__setattr__(result, "enqueued_at", job.enqueued_at)
        task_enqueued.send(type(self), task_result=result)

    def _connection(self, queue_name: str) -> Redis:
        if queue_name not in self._redis:
            self._redis[queue_name] = django_rq.get_connection(queue_name)
        return self._redis[queue_name]


class TesseraRQWorker(SimpleWorker):
    """Runs each job in this process, as db_worker does, rather than in a forked child: the
    scheduler thread runs beside it, and forking a process that has other threads can copy a
    lock one of them holds. Database connections are checked around each job, as Django
    does around a request, so a restarted PostgreSQL costs one job's retry, not the worker."""

    def execute_job(self, job: Any, queue: Any) -> None:
        close_old_connections()
        try:
            super().execute_job(job, queue)
        finally:
            close_old_connections()
