"""What the console log prints: each record once, and client errors without tracebacks;
the request id on every line of a request; the JSON format."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from django_tasks import task
from django_tasks_db.models import DBTaskResult

from tessera.core.logs import follow_tasks, json_formatter
from tessera.core.models import SCOPE_READ
from tessera.core.requestid import current_request_id
from tests.support.api import Api

pytestmark = pytest.mark.django_db


def _configured_stream_handlers() -> list[logging.StreamHandler[Any]]:
    """Every handler the settings' logging set up, wherever it hangs (not pytest's own)."""
    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values() if isinstance(lg, logging.Logger)
    ]
    found: list[logging.StreamHandler[Any]] = []
    for lg in loggers:
        for handler in lg.handlers:
            ours = not type(handler).__module__.startswith("_pytest")
            if isinstance(handler, logging.StreamHandler) and ours and handler not in found:
                found.append(handler)
    return found


@pytest.fixture
def console(settings: Any) -> Iterator[io.StringIO]:
    """What the console would show, with DEBUG on as in the demo (Django's own console
    handler only speaks in DEBUG)."""
    settings.DEBUG = True
    buffer = io.StringIO()
    handlers = _configured_stream_handlers()
    streams = [handler.stream for handler in handlers]
    for handler in handlers:
        handler.setStream(buffer)
    yield buffer
    for handler, stream in zip(handlers, streams, strict=True):
        handler.setStream(stream)


def _lines_with(output: str, needle: str) -> list[str]:
    return [line for line in output.splitlines() if needle in line]


def test_a_tessera_warning_is_printed_once(console: io.StringIO) -> None:
    logging.getLogger("tessera.test").warning("tessera-warning-marker")
    assert console.getvalue().count("tessera-warning-marker") == 1


def test_a_django_request_warning_is_printed_once(console: io.StringIO) -> None:
    logging.getLogger("django.request").warning("request-warning-marker")
    assert console.getvalue().count("request-warning-marker") == 1


def test_a_403_from_the_api_is_one_line_without_traceback(
    console: io.StringIO, make_api: Any
) -> None:
    reader: Api = make_api(SCOPE_READ)
    response = reader.post("/members/mem_x/adjustments", {"points": 5, "reason": "x"})
    assert response.status_code == 403
    assert len(_lines_with(console.getvalue(), "/adjustments")) == 1
    assert "Traceback" not in console.getvalue()


def test_permission_denied_is_logged_without_traceback(
    console: io.StringIO, django_user_model: Any
) -> None:
    """Django raises PermissionDenied for a staff user without the model's permission, and
    logs it with the exception attached."""
    client = Client()
    client.force_login(django_user_model.objects.create_user("clerk", is_staff=True))
    assert client.get("/admin/core/apikey/").status_code == 403
    assert len(_lines_with(console.getvalue(), "/admin/core/apikey/")) == 1
    assert "Traceback" not in console.getvalue()


def test_a_500_from_the_api_logs_its_traceback_once(
    console: io.StringIO, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tessera.crm import services

    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(services, "record_timeline", explode)
    assert api.post("/contacts", {"last_name": "x"}).status_code == 500
    assert console.getvalue().count("Traceback") == 1
    assert len(_lines_with(console.getvalue(), "/api/v1/contacts")) == 1


# --- request ids --------------------------------------------------------------------------


def test_every_response_carries_a_request_id() -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", Client().get("/healthz")["X-Request-ID"])


def test_each_request_gets_its_own_id() -> None:
    client = Client()
    assert client.get("/healthz")["X-Request-ID"] != client.get("/healthz")["X-Request-ID"]


def test_a_sane_incoming_request_id_comes_back() -> None:
    response = Client().get("/healthz", headers={"X-Request-ID": "lb-7f3a.01_x"})
    assert response["X-Request-ID"] == "lb-7f3a.01_x"


@pytest.mark.parametrize(
    "hostile",
    ["abc\ndef", "a b", '"}{"level":"critical', "<script>", "x" * 65, "ünï", ""],
)
def test_a_hostile_incoming_request_id_is_replaced(hostile: str) -> None:
    response = Client().get("/healthz", HTTP_X_REQUEST_ID=hostile)
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])


def test_the_longest_sane_request_id_is_kept() -> None:
    response = Client().get("/healthz", headers={"X-Request-ID": "r" * 64})
    assert response["X-Request-ID"] == "r" * 64


def test_the_request_id_is_cleared_after_the_request() -> None:
    Client().get("/healthz", headers={"X-Request-ID": "gone-after"})
    assert current_request_id.get() is None


def test_a_line_logged_inside_a_request_carries_its_id(
    console: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    _log_inside_readiness(monkeypatch)
    Client().get("/readyz", headers={"X-Request-ID": "inside-1"})
    assert _records_with("inside-marker")[0].request_id == "inside-1"


def test_djangos_response_line_carries_the_request_id(console: io.StringIO) -> None:
    """Django logs a 404 after the middleware has returned; the id rides on the request."""
    Client().get("/no-such-page-here", headers={"X-Request-ID": "after-chain"})
    assert _records_with("/no-such-page-here")[0].request_id == "after-chain"


def test_a_line_outside_any_request_has_no_request_id(console: io.StringIO) -> None:
    logging.getLogger("tessera.test").warning("outside-marker")
    assert not hasattr(_records_with("outside-marker")[0], "request_id")


# --- the JSON format ------------------------------------------------------------------------


@pytest.fixture
def json_console(console: io.StringIO) -> Iterator[io.StringIO]:
    """The console handlers with TESSERA_LOG_FORMAT=json's formatter."""
    handlers = _configured_stream_handlers()
    formatters = [handler.formatter for handler in handlers]
    for handler in handlers:
        handler.setFormatter(json_formatter())
    yield console
    for handler, formatter in zip(handlers, formatters, strict=True):
        handler.setFormatter(formatter)


def _json_lines(output: str, needle: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _lines_with(output, needle)]


def test_tests_log_plain_text(settings: Any) -> None:
    assert settings.LOGGING["handlers"]["console"]["formatter"] == "plain"


def test_a_json_line_is_one_json_object(json_console: io.StringIO) -> None:
    logging.getLogger("tessera.test").warning("json-marker")
    assert isinstance(json.loads(json_console.getvalue().strip()), dict)


def test_a_json_line_names_level_logger_and_message(json_console: io.StringIO) -> None:
    logging.getLogger("tessera.test").warning("json-marker %s", 7)
    line = _json_lines(json_console.getvalue(), "json-marker")[0]
    assert {k: line[k] for k in ("level", "logger", "message")} == {
        "level": "warning",
        "logger": "tessera.test",
        "message": "json-marker 7",
    }


def test_a_json_line_has_an_iso_utc_timestamp(json_console: io.StringIO) -> None:
    logging.getLogger("tessera.test").warning("json-marker")
    stamp = _json_lines(json_console.getvalue(), "json-marker")[0]["timestamp"]
    assert datetime.fromisoformat(stamp).utcoffset() == timedelta(0)


def test_a_json_line_carries_the_incoming_request_id(json_console: io.StringIO) -> None:
    Client().get("/no-such-page-here", headers={"X-Request-ID": "req-42"})
    assert _json_lines(json_console.getvalue(), "/no-such-page-here")[0]["request_id"] == "req-42"


def test_a_json_line_never_carries_a_hostile_request_id(json_console: io.StringIO) -> None:
    Client().get("/no-such-page-here", HTTP_X_REQUEST_ID='x"\n{"forged": 1}')
    line = _json_lines(json_console.getvalue(), "/no-such-page-here")[0]
    assert re.fullmatch(r"[0-9a-f]{32}", line["request_id"])


def test_a_json_line_keeps_the_exception(json_console: io.StringIO) -> None:
    try:
        raise ValueError("boom-in-json")
    except ValueError:
        logging.getLogger("tessera.test").exception("failed-marker")
    line = _json_lines(json_console.getvalue(), "failed-marker")[0]
    assert "ValueError: boom-in-json" in line["exception"]


def test_a_500_in_json_is_one_line_with_its_traceback(
    json_console: io.StringIO, api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tessera.crm import services

    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(services, "record_timeline", explode)
    api.post("/contacts", {"last_name": "x"})
    assert json_console.getvalue().count("Traceback") == 1


def test_a_403_in_json_has_no_traceback(json_console: io.StringIO, make_api: Any) -> None:
    reader: Api = make_api(SCOPE_READ)
    reader.post("/members/mem_x/adjustments", {"points": 5, "reason": "x"})
    assert "exception" not in _json_lines(json_console.getvalue(), "/adjustments")[0]


def test_production_logs_json_by_default() -> None:
    assert _settings_value("TESSERA_LOG_FORMAT", SECRET_KEY="x") == "json"


def test_the_demo_logs_plain_text_by_default() -> None:
    assert _settings_value("TESSERA_LOG_FORMAT", TESSERA_DEMO="1") == "plain"


def test_the_log_format_can_be_chosen() -> None:
    value = _settings_value("TESSERA_LOG_FORMAT", SECRET_KEY="x", TESSERA_LOG_FORMAT="plain")
    assert value == "plain"


def test_an_unknown_log_format_is_refused() -> None:
    result = _import_settings(SECRET_KEY="x", TESSERA_LOG_FORMAT="xml")
    assert "TESSERA_LOG_FORMAT must be" in result.stderr


# --- the worker's lines ---------------------------------------------------------------------


@task()
def log_from_a_task() -> None:
    logging.getLogger("tessera.test").warning("task-marker")


def _run_one_task(monkeypatch: pytest.MonkeyPatch) -> None:
    """One job through the real worker loop, as ``tessera worker`` runs it. The loop closes
    connections between jobs, which would end the test's transaction (as the test client
    does for requests, it is left out)."""
    from django_tasks_db.management.commands import db_worker

    monkeypatch.setattr(db_worker, "close_old_connections", lambda: None)
    follow_tasks()
    log_from_a_task.enqueue()
    # The worker command sets its loggers' levels for the process; later tests get theirs.
    worker_loggers = [logging.getLogger(name) for name in ("django_tasks", "django_tasks_db")]
    levels = [lg.level for lg in worker_loggers]
    try:
        call_command("db_worker", batch=True, interval=0, verbosity=0, reload=False)
    finally:
        for lg, level in zip(worker_loggers, levels, strict=True):
            lg.setLevel(level)


def test_a_line_logged_by_a_running_task_names_it(
    json_console: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run_one_task(monkeypatch)
    line = _json_lines(json_console.getvalue(), "task-marker")[0]
    assert line["task_name"] == "tests.integration.test_logging.log_from_a_task"


def test_a_line_logged_by_a_running_task_carries_its_id(
    json_console: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run_one_task(monkeypatch)
    job = DBTaskResult.objects.get()
    assert _json_lines(json_console.getvalue(), "task-marker")[0]["task_id"] == str(job.id)


def test_a_line_after_the_task_finished_names_no_task(
    json_console: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    _run_one_task(monkeypatch)
    logging.getLogger("tessera.test").warning("after-task-marker")
    assert "task_id" not in _json_lines(json_console.getvalue(), "after-task-marker")[0]


# --- helpers --------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _captured_records() -> Iterator[None]:
    """The records the console handlers accept, with what their filters put on them."""
    _RECORDS.clear()
    handlers = _configured_stream_handlers()
    for handler in handlers:
        handler.addFilter(_keep)
    yield
    for handler in handlers:
        handler.removeFilter(_keep)


_RECORDS: list[logging.LogRecord] = []


def _keep(record: logging.LogRecord) -> bool:
    _RECORDS.append(record)
    return True


def _records_with(needle: str) -> list[logging.LogRecord]:
    return [r for r in _RECORDS if needle in r.getMessage()]


def _log_inside_readiness(monkeypatch: pytest.MonkeyPatch) -> None:
    from tessera.core import health

    def readiness() -> dict[str, str]:
        logging.getLogger("tessera.test").warning("inside-marker")
        return {"database": "ok"}

    monkeypatch.setattr(health, "readiness", readiness)


def _import_settings(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TESSERA_", "SECRET_KEY"))}
    code = "import sys, tessera.settings as s; print(getattr(s, sys.argv[1]))"
    return subprocess.run(
        [sys.executable, "-c", code, "TESSERA_LOG_FORMAT"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _settings_value(name: str, **env: str) -> str:
    result = _import_settings(**env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()
