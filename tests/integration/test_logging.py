"""What the console log prints: each record once, and client errors without tracebacks."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

from tessera.core.models import SCOPE_READ
from tests.conftest import Api

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
