"""Tessera's Prometheus metrics and the ``/metrics`` endpoint.

Two kinds: counters of outcomes, incremented in the process that produced them
(``tessera_checkouts_total``, ``tessera_orders_total``), and gauges read from the database
when Prometheus scrapes (jobs waiting and running per queue, emails per status), so they are
right whichever process enqueued or ran the work. django-prometheus adds the HTTP metrics
(latency by view and method, responses by status) from its middleware pair.

Under gunicorn each worker process has its own counters; with ``PROMETHEUS_MULTIPROC_DIR``
set (an empty directory, the same for every worker of one server) prometheus_client keeps
them in files there and a scrape of any worker adds them all up.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ParamSpec, TypeVar

import prometheus_client
from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Min
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CollectorRegistry, Counter, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from tessera.core.errors import NotFound, ProblemError

logger = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")

CHECKOUT_OUTCOMES = (
    "paid", "free", "requires_action", "declined", "insufficient_balance", "sold_out",
    "promo_code_used_up", "gateway_unavailable", "rejected", "invalid", "error",
)  # fmt: skip
ORDER_OUTCOMES = ("placed", "insufficient_balance", "sold_out", "invalid", "error")
# A refusal's problem code -> its outcome label; any other refusal is "invalid" (4xx) or
# "error" (5xx), so the label set stays small whatever codes appear later.
_REFUSALS = {
    "payment_declined": "declined",
    "insufficient_balance": "insufficient_balance",
    "sold_out": "sold_out",
    "promo_code_used_up": "promo_code_used_up",
    "payment_gateway_unavailable": "gateway_unavailable",
    "payment_rejected": "rejected",
}

CHECKOUTS = Counter(
    "tessera_checkouts", "Event checkouts by how they ended when answered.", ["outcome"]
)
ORDERS = Counter("tessera_orders", "Wallet orders by how they ended.", ["outcome"])
for _outcome in CHECKOUT_OUTCOMES:  # every series exists from the start, at 0
    CHECKOUTS.labels(_outcome)
for _outcome in ORDER_OUTCOMES:
    ORDERS.labels(_outcome)


def record_checkout(outcome: str) -> None:
    CHECKOUTS.labels(outcome if outcome in CHECKOUT_OUTCOMES else "error").inc()


def record_order(outcome: str) -> None:
    ORDERS.labels(outcome if outcome in ORDER_OUTCOMES else "error").inc()


def refusal_outcome(exc: BaseException, known: tuple[str, ...]) -> str:
    if isinstance(exc, ProblemError):
        label = _REFUSALS.get(exc.code, "invalid" if exc.status < 500 else "error")
        return label if label in known else ("invalid" if exc.status < 500 else "error")
    return "error"


def counts_checkouts(func: Callable[P, R]) -> Callable[P, R]:
    """Counts each checkout a service runs: its status, or why it was refused."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            result = func(*args, **kwargs)
        except Exception as exc:
            record_checkout(refusal_outcome(exc, CHECKOUT_OUTCOMES))
            raise
        record_checkout(str(getattr(result, "status", "error")))
        return result

    return wrapper


def counts_orders(func: Callable[P, R]) -> Callable[P, R]:
    """Counts each wallet order a service places, or why it was refused."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            result = func(*args, **kwargs)
        except Exception as exc:
            record_order(refusal_outcome(exc, ORDER_OUTCOMES))
            raise
        record_order("placed")
        return result

    return wrapper


# --- read at scrape time -------------------------------------------------------------------


def _database_backends() -> list[str]:
    tasks: dict[str, dict[str, Any]] = getattr(settings, "TASKS", {})
    return [
        name
        for name, conf in tasks.items()
        if conf.get("BACKEND") == "django_tasks_db.DatabaseBackend"
    ]


def _queue_names(backends: list[str]) -> set[str]:
    tasks: dict[str, dict[str, Any]] = getattr(settings, "TASKS", {})
    return {q for name in backends for q in tasks[name].get("QUEUES", ["default"])}


# Gauges other apps count at scrape time (emails per status, from notifications): core
# imports no app above it, so each registers its own in its AppConfig.ready().
Gauge = Callable[[], GaugeMetricFamily]
_gauges: list[Gauge] = []


def register_gauge(gauge: Gauge) -> None:
    """Count ``gauge()`` at every scrape, beside the job gauges; registering twice is
    harmless (``ready()`` may run twice in tests)."""
    if gauge not in _gauges:
        _gauges.append(gauge)


class DatabaseCollector(Collector):
    """Gauges counted by the database at each scrape: jobs per queue and state, the age of
    the oldest job due, and what the apps registered (emails per status)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            yield from self._tasks()
            for gauge in _gauges:
                yield gauge()
        except DatabaseError as exc:  # a scrape must still answer the HTTP metrics
            logger.warning("metrics: database not readable: %s", exc)

    def _tasks(self) -> Iterable[GaugeMetricFamily]:
        backends = _database_backends()
        if not backends:  # jobs live elsewhere (another backend): nothing to count here
            return
        jobs = GaugeMetricFamily(
            "tessera_jobs", "Background jobs ready to run or running, per queue.",
            labels=["queue", "state"],
        )  # fmt: skip
        oldest = GaugeMetricFamily(
            "tessera_jobs_oldest_ready_age_seconds",
            "Seconds since the oldest job due to run was enqueued, per queue (0: none).",
            labels=["queue"],
        )
        counts, ages = _job_counts(backends)
        for (queue, state), n in sorted(counts.items()):
            jobs.add_metric([queue, state], n)
        for queue in sorted({q for q, _ in counts}):
            oldest.add_metric([queue], ages.get(queue, 0.0))
        yield jobs
        yield oldest


def _job_counts(backends: list[str]) -> tuple[dict[tuple[str, str], int], dict[str, float]]:
    """Jobs per (queue, state), every configured queue at 0 first; and per queue, the age
    of the oldest job due. Two grouped counts, whatever the size of the finished history."""
    from django_tasks import TaskResultStatus
    from django_tasks_db.models import DBTaskResult

    queues = _queue_names(backends)
    counts = {(q, state): 0 for q in queues for state in ("ready", "running")}
    ages: dict[str, float] = {}
    mine = DBTaskResult.objects.filter(backend_name__in=backends)
    now = timezone.now()
    ready = mine.ready().values("queue_name").annotate(n=Count("id"), first=Min("enqueued_at"))
    for row in ready.order_by():
        counts[(row["queue_name"], "ready")] = row["n"]
        ages[row["queue_name"]] = max(0.0, (now - row["first"]).total_seconds())
    running = mine.filter(status=TaskResultStatus.RUNNING).values("queue_name")
    for busy in running.annotate(n=Count("id")).order_by():
        counts[(busy["queue_name"], "running")] = busy["n"]
    return counts, ages


_DATABASE = CollectorRegistry(auto_describe=False)
_DATABASE.register(DatabaseCollector())


def render_metrics() -> bytes:
    """The exposition text: this process's (or all processes') metrics, then the ones the
    database counts, once."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = prometheus_client.REGISTRY
    return prometheus_client.generate_latest(registry) + prometheus_client.generate_latest(
        _DATABASE
    )


# --- the endpoint --------------------------------------------------------------------------

_FORWARDING_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


def _is_local(request: HttpRequest) -> bool:
    """From this machine and not relayed by a proxy on it: a proxy on the same host makes
    every visitor's REMOTE_ADDR 127.0.0.1, and says so in a forwarding header."""
    if any(name in request.headers for name in _FORWARDING_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")).is_loopback
    except ValueError:
        return False


def _has_token(request: HttpRequest, token: str) -> bool:
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(sent.strip().encode(), token.encode())


def may_scrape(request: HttpRequest) -> bool:
    token = settings.TESSERA_METRICS_TOKEN
    return _has_token(request, token) if token else _is_local(request)


@never_cache
@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """Answered only to the bearer of ``TESSERA_METRICS_TOKEN``, or without one to this
    machine; anyone else gets the same 404 as for a path that does not exist."""
    if not may_scrape(request):
        problem = NotFound("No such page.")
        return JsonResponse(problem.to_dict(), status=404, content_type="application/problem+json")
    return HttpResponse(render_metrics(), content_type=prometheus_client.CONTENT_TYPE_LATEST)
