"""Real concurrent API requests: many threads released together, each on its own connection."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from django.db import connections

from tessera.core.apikeys import create_api_key
from tests.support.api import Api

THREADS = 40  # PostgreSQL's 100 connections are shared with the test run itself


def hammer(n: int, call: Callable[[Api], Any]) -> list[tuple[int, dict[str, Any]]]:
    """``n`` calls from ``THREADS`` threads released together; returns (status, body)."""
    _, raw = create_api_key("race")
    barrier = threading.Barrier(THREADS)
    results: list[tuple[int, dict[str, Any]]] = []
    lock = threading.Lock()
    per_thread = [n // THREADS + (1 if i < n % THREADS else 0) for i in range(THREADS)]

    def worker(count: int) -> None:
        try:
            api = Api(raw)
            barrier.wait()
            for _ in range(count):
                r = call(api)
                with lock:
                    results.append((r.status_code, json.loads(r.content)))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(c,)) for c in per_thread]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return results
