"""Spending one request against a rate limit, as the API and the portal both count them."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django_ratelimit.core import get_usage


def spend(request: HttpRequest, group: str, key: Any, rate: str) -> int | None:
    """Count one request against a limit; the seconds to wait when it is over, else None.
    A cache that does not answer (django-ratelimit's time_left < 0) lets the request
    through: a Redis outage must not stop sales."""
    usage = get_usage(request, group=group, key=key, rate=rate, increment=True)
    if usage is None or usage["time_left"] < 0 or not usage["should_limit"]:
        return None
    return max(1, int(usage["time_left"]))
