"""``tessera worker``: runs the jobs of the configured Tasks backend, with the periodic
scheduler beside them.

``TESSERA_TASKS_BACKEND=database`` (the default): django_tasks_db's ``db_worker`` polls the
jobs table. ``TESSERA_TASKS_BACKEND=rq``: an RQ worker takes jobs from the Redis queues;
jobs reach those queues through ``tessera.core.rq.OnCommitRQBackend``, never before their
transaction commits."""

from __future__ import annotations

import logging
import signal
import threading
import time
from argparse import ArgumentParser
from typing import Any

import django_rq
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import OperationalError, close_old_connections, connections
from django_tasks import task_backends
from django_tasks_rq.backend import Job, RQBackend
from redis.exceptions import ConnectionError as RedisConnectionError

from tessera.core.scheduler import run_in_background

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Run the background worker (emails and other jobs) until stopped."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--queues", default="*", help="comma-separated queues, * for all")
        parser.add_argument(
            "--interval", type=float, default=1.0, help="idle poll seconds (database backend)"
        )
        parser.add_argument("--batch", action="store_true", help="run what is due, then exit")

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        if not options["batch"]:
            run_in_background(stop)  # periodic jobs: point expiry, clean-up
        try:
            if isinstance(task_backends["default"], RQBackend):
                self._work_rq(options)
            else:
                self._work_db(options)
        finally:
            stop.set()

    def _work_db(self, options: dict[str, Any]) -> None:
        while True:
            try:
                call_command(
                    "db_worker",
                    queue_name=options["queues"],
                    interval=options["interval"],
                    batch=options["batch"],
                    reload=False,
                    verbosity=options["verbosity"],
                )
                return
            except OperationalError:
                # db_worker lets a lost database connection end the process (the soak saw
                # it after pg_terminate_backend and a PostgreSQL restart), and with it
                # every email. Reconnect and go on; a claimed job it could not finish is
                # sent again by the stalled-email sweep.
                if options["batch"]:
                    raise
                logger.warning("worker lost the database; reconnecting", exc_info=True)
                close_old_connections()
                connections.close_all()
                time.sleep(1.0)

    def _work_rq(self, options: dict[str, Any]) -> None:
        backend = task_backends["default"]
        wanted = options["queues"]
        queues = sorted(backend.queues) if wanted == "*" else wanted.split(",")
        level = {0: "WARNING", 1: "INFO"}.get(options["verbosity"], "DEBUG")
        # rq installs its own SIGINT/SIGTERM handlers (a warm shutdown after the current job);
        # a batch run gives the caller's back when it returns.
        saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            worker = django_rq.get_worker(
                *queues, job_class=Job, worker_class="tessera.core.rq.TesseraRQWorker"
            )
            # The scheduler moves jobs whose run_after has come (email retries) to their
            # queue; with several workers one holds its lock at a time.
            worker.work(burst=options["batch"], with_scheduler=True, logging_level=level)
        except RedisConnectionError as exc:
            raise CommandError(f"Redis unreachable for the task queue: {exc}") from exc
        finally:
            for sig, handler in saved.items():
                signal.signal(sig, handler)
