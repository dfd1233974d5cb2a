from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.utils import timezone

from tessera.core.models import IdempotencyKey
from tessera.crm.models import Contact, TimelineEntry
from tests.support.api import Api, assert_problem

ADA = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}


def create_ada(api: Api) -> Any:
    return api.post("/contacts", ADA, headers={"Idempotency-Key": "create-ada"})


def create_ada_again(api: Api) -> Any:
    """The same request under the same key, with another key order and spacing."""
    return api.post(
        "/contacts",
        raw=json.dumps(dict(reversed(list(ADA.items()))), indent=2),
        headers={"Idempotency-Key": "create-ada"},
    )


def test_a_first_request_is_not_marked_replayed(api: Api) -> None:
    first = create_ada(api)
    assert first.status_code == 201
    assert not first.has_header("Idempotent-Replayed")


def test_a_replay_returns_the_first_response(api: Api) -> None:
    first = create_ada(api)
    again = create_ada_again(api)
    assert again.status_code == 201
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"
    assert again["Content-Type"] == first["Content-Type"]


def test_a_replay_writes_nothing(api: Api) -> None:
    create_ada(api)
    create_ada_again(api)
    assert (Contact.objects.count(), TimelineEntry.objects.count()) == (1, 1)


def test_same_key_other_body_is_a_conflict(api: Api) -> None:
    api.post("/contacts", ADA, headers={"Idempotency-Key": "k"})
    r = api.post("/contacts", {**ADA, "first_name": "Augusta"}, headers={"Idempotency-Key": "k"})
    assert_problem(r, 422, "idempotency_conflict")
    assert Contact.objects.count() == 1
    assert Contact.objects.get().first_name == "Ada"


def test_same_key_other_path_is_a_conflict(api: Api) -> None:
    api.post("/contacts", ADA, headers={"Idempotency-Key": "k"})
    assert_problem(
        api.post("/leads", ADA, headers={"Idempotency-Key": "k"}), 422, "idempotency_conflict"
    )


def test_key_still_in_progress(api: Api) -> None:
    first = api.post("/contacts", ADA, headers={"Idempotency-Key": "busy"})
    IdempotencyKey.objects.filter(key="busy").update(
        status=IdempotencyKey.Status.IN_PROGRESS, locked_at=timezone.now()
    )
    r = api.post("/contacts", ADA, headers={"Idempotency-Key": "busy"})
    assert_problem(r, 409, "idempotency_in_progress")
    assert Contact.objects.count() == 1
    assert first.status_code == 201


def test_key_abandoned_by_a_crash_is_taken_over(api: Api) -> None:
    IdempotencyKey.objects.create(
        api_key_id=_key_id(api),
        key="crashed",
        method="POST",
        path="/api/v1/contacts",
        fingerprint=_fp(ADA),
        locked_at=timezone.now() - timedelta(hours=1),
    )
    r = api.post("/contacts", ADA, headers={"Idempotency-Key": "crashed"})
    assert r.status_code == 201
    assert Contact.objects.count() == 1
    assert IdempotencyKey.objects.get(key="crashed").status == IdempotencyKey.Status.COMPLETED


def test_keys_are_scoped_to_the_api_key(make_api: Callable[..., Api]) -> None:
    a, b = make_api(), make_api()
    assert a.post("/contacts", ADA, headers={"Idempotency-Key": "same"}).status_code == 201
    assert b.post("/contacts", ADA, headers={"Idempotency-Key": "same"}).status_code == 201
    assert Contact.objects.count() == 2


def test_validation_errors_are_not_stored(api: Api) -> None:
    bad = api.post(
        "/contacts", {"first_name": "no last name"}, headers={"Idempotency-Key": "fix-me"}
    )
    assert_problem(bad, 422, "validation_error")
    assert not IdempotencyKey.objects.filter(key="fix-me").exists()
    # The client fixes the body and retries with the same key: it goes through.
    fixed = api.post("/contacts", ADA, headers={"Idempotency-Key": "fix-me"})
    assert fixed.status_code == 201


def test_server_error_releases_the_key(api: Api, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tessera.crm import services

    def boom(data):  # type: ignore[no-untyped-def]
        raise RuntimeError("transient")

    monkeypatch.setattr(services, "create_contact", boom)
    assert_problem(
        api.post("/contacts", ADA, headers={"Idempotency-Key": "retry"}), 500, "internal_error"
    )
    assert not IdempotencyKey.objects.filter(key="retry").exists()
    monkeypatch.undo()
    assert api.post("/contacts", ADA, headers={"Idempotency-Key": "retry"}).status_code == 201


def test_bad_idempotency_key_header(api: Api) -> None:
    r = api.post("/contacts", ADA, headers={"Idempotency-Key": "x" * 300})
    body = assert_problem(r, 422, "validation_error")
    assert body["errors"][0]["field"] == "Idempotency-Key"
    assert Contact.objects.count() == 0


def _key_id(api: Api) -> str:
    from tessera.core.apikeys import authenticate_key

    key = authenticate_key(api.raw_key or "")
    assert key is not None
    return key.pk


def _fp(body: dict) -> str:
    from tessera.core.idempotency import fingerprint

    return fingerprint("POST", "/api/v1/contacts", json.dumps(body).encode())
