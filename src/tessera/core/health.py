"""Liveness and readiness for load balancers and orchestrators, and the worker's heartbeat.

``/healthz``: the process answers HTTP; it reads nothing, so a slow database never gets a
healthy web process restarted. ``/readyz``: this deployment can do its work: the database
answers, its schema is the code's (no unapplied migrations) and a worker has beaten
recently (emails, confirmations and expiry run there). Both answer without a session,
authentication or rate limit, and are exempt from the HTTPS redirect by their exact paths.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import datetime, timedelta

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.db.models import Max
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from tessera.core.models import WorkerHeartbeat

logger = logging.getLogger(__name__)

OK = "ok"
# Once the schema is current it stays current for this process's lifetime (a migration
# adds to the plan only with new code, which means a new process): the plan, which reads
# every migration file, is computed until it is first empty, then never again.
_migrations_current = False


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def record_heartbeat(name: str | None = None, *, now: datetime | None = None) -> None:
    """The worker is alive and reaches the database: one upsert (INSERT … ON CONFLICT)."""
    beat = WorkerHeartbeat(
        name=name or worker_name(),
        host=socket.gethostname()[:150],
        pid=os.getpid(),
        beat_at=now or timezone.now(),
    )
    WorkerHeartbeat.objects.bulk_create(
        [beat],
        update_conflicts=True,
        unique_fields=["name"],
        update_fields=["host", "pid", "beat_at"],
    )


def forget_old_heartbeats(older_than: timedelta = timedelta(days=7)) -> int:
    """Rows of workers long gone (each start is a new host:pid); kept a week for inquiry."""
    deleted, _ = WorkerHeartbeat.objects.filter(beat_at__lt=timezone.now() - older_than).delete()
    return deleted


def unapplied_migrations() -> int:
    """How many migrations the database lacks."""
    executor = MigrationExecutor(connection)
    return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))


def check_database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        logger.warning("readiness: database unreachable: %s", exc)
        return f"unreachable ({type(exc).__name__})"
    return OK


def check_migrations() -> str:
    global _migrations_current
    if _migrations_current:
        return OK
    missing = unapplied_migrations()
    if missing:
        return f"{missing} unapplied"
    _migrations_current = True
    return OK


def check_worker(now: datetime | None = None) -> str:
    last = WorkerHeartbeat.objects.aggregate(last=Max("beat_at"))["last"]
    if last is None:
        return "no heartbeat yet"
    age = ((now or timezone.now()) - last).total_seconds()
    if age > settings.TESSERA_WORKER_HEARTBEAT_SECONDS:
        return f"last heartbeat {int(age)} s ago"
    return OK


def readiness() -> dict[str, str]:
    """Each check's verdict; the ones that need the database are skipped without it."""
    checks = {"database": check_database()}
    if checks["database"] != OK:
        checks.update(migrations="not checked", worker="not checked")
        return checks
    try:
        checks["migrations"] = check_migrations()
        checks["worker"] = check_worker()
    except DatabaseError as exc:  # the database went away between the checks
        logger.warning("readiness: check failed: %s", exc)
        checks.setdefault("migrations", "not checked")
        checks.setdefault("worker", "not checked")
    return checks


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": OK})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    checks = readiness()
    ready = all(verdict == OK for verdict in checks.values())
    return JsonResponse(
        {"status": OK if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )
