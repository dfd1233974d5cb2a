"""What the log says about an HTTP request that went wrong.

A client's error (401, 403, 404, 409, 422, …) is an expected answer: one line saying what and
where. Django attaches a traceback to some of them (PermissionDenied, SuspiciousOperation),
which only buries the real errors. A server error keeps its traceback, printed once.

Every line also carries the context it was written in: the request id (``requestid``) and,
in the worker, the task's id and name. ``TESSERA_LOG_FORMAT`` chooses how lines look: the
plain text below for people (the demo, tests), or one JSON object per line for a log
pipeline (production's default).
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import Any

from django.http import HttpRequest

from tessera.core.requestid import current_request_id
from tessera.core.requeststate import peek_state, state_of


def mark_logged(request: HttpRequest) -> None:
    """This request's crash is in the log already, with its traceback."""
    state_of(request).error_logged = True


class RequestOutcomeFilter(logging.Filter):
    """For the handlers: records Django logs about a response carry its ``status_code``."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if not isinstance(status, int):
            return True
        if status < 500:
            record.exc_info = None
            record.exc_text = None  # a traceback another handler formatted already
            return True
        # The API logs its own crashes with the traceback; Django's "Internal Server Error"
        # line for the same request would report it a second time.
        state = peek_state(getattr(record, "request", None))
        return not (state is not None and state.error_logged)


# --- context on every line: request id, task ------------------------------------------------

current_task: ContextVar[tuple[str, str] | None] = ContextVar("tessera_task", default=None)
CONTEXT_FIELDS = ("request_id", "task_id", "task_name")


class ContextFilter(logging.Filter):
    """For the handlers: puts the request id (and, in the worker, the running task's id and
    name) on every record, so any formatter can print them. A handler's filter sees the
    records of every logger that propagates to it, a logger's filter only its own."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = current_request_id.get() or getattr(
            getattr(record, "request", None), "request_id", None
        )
        if request_id and not hasattr(record, "request_id"):
            record.request_id = request_id
        task = current_task.get()
        if task is not None and not hasattr(record, "task_id"):
            record.task_id, record.task_name = task
        return True


def json_formatter() -> logging.Formatter:
    """One JSON object per line: timestamp (ISO 8601, UTC), level, logger, message, the
    context fields when set, the response status Django attaches to its request lines, and
    the traceback as ``exception`` when there is one. The code logs through the standard
    library; structlog only renders."""
    import structlog

    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(allow=[*CONTEXT_FIELDS, "status_code"]),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            structlog.processors.JSONRenderer(default=str),
        ],
    )


def follow_tasks() -> None:
    """In a worker: the log lines a task writes while it runs carry its id and name. The
    task backend announces start and end only by its signals, so this listens to them; it
    only labels log lines and changes nothing the task does."""
    from django_tasks.signals import task_finished, task_started

    task_started.connect(_task_started, dispatch_uid="tessera.logs.task_started")
    task_finished.connect(_task_finished, dispatch_uid="tessera.logs.task_finished")


def _task_started(sender: Any, task_result: Any, **kwargs: Any) -> None:
    current_task.set((str(task_result.id), str(task_result.task.module_path)))


def _task_finished(sender: Any, task_result: Any, **kwargs: Any) -> None:
    current_task.set(None)
