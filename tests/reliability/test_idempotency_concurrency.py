"""20 concurrent requests with one Idempotency-Key create exactly one record (PostgreSQL)."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connections

from tessera.core.apikeys import create_api_key
from tessera.crm.models import Contact, TimelineEntry
from tests.support.api import Api

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

N = 20


def test_concurrent_duplicates_create_exactly_one_contact() -> None:
    _, raw = create_api_key("race")
    barrier = threading.Barrier(N)
    results: list[tuple[int, dict, bool]] = []
    lock = threading.Lock()

    def fire() -> None:
        try:
            api = Api(raw)
            barrier.wait()
            r = api.post(
                "/contacts",
                {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
                headers={"Idempotency-Key": "one-ada"},
            )
            with lock:
                results.append(
                    (r.status_code, json.loads(r.content), r.has_header("Idempotent-Replayed"))
                )
        finally:
            connections.close_all()

    threads = [threading.Thread(target=fire) for _ in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    assert len(results) == N
    assert Contact.objects.count() == 1
    assert TimelineEntry.objects.count() == 1
    contact_id = Contact.objects.get().pk
    created = [body for status, body, replayed in results if status == 201 and not replayed]
    replayed = [body for status, body, replayed in results if status == 201 and replayed]
    busy = [body for status, body, _ in results if status == 409]
    assert len(created) == 1
    assert created[0]["id"] == contact_id
    assert all(b["id"] == contact_id for b in replayed)
    assert all(b["code"] == "idempotency_in_progress" for b in busy)
    assert len(created) + len(replayed) + len(busy) == N
