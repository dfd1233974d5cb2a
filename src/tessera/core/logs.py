"""What the log says about an HTTP request that went wrong.

A client's error (401, 403, 404, 409, 422, …) is an expected answer: one line saying what and
where. Django attaches a traceback to some of them (PermissionDenied, SuspiciousOperation),
which only buries the real errors. A server error keeps its traceback, printed once.
"""

from __future__ import annotations

import logging
from typing import Any

_LOGGED = "_tessera_error_logged"


def mark_logged(request: Any) -> None:
    """This request's crash is in the log already, with its traceback."""
    setattr(request, _LOGGED, True)


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
        return not getattr(getattr(record, "request", None), _LOGGED, False)
