from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from tessera.core.apikeys import authenticate_key, create_api_key
from tessera.core.models import ApiKey
from tests.support.api import Api


def test_key_is_stored_hashed_only(db: None) -> None:
    key, raw = create_api_key("integration", ["read"])
    with connection.cursor() as cur:
        cur.execute("SELECT * FROM core_apikey")
        rows = cur.fetchall()
    assert raw not in repr(rows)
    assert raw[len(key.prefix) :] not in repr(rows)
    assert key.prefix == raw[:12]


def test_last_used_is_recorded(db: None, django_capture_on_commit_callbacks: Any) -> None:
    key, raw = create_api_key("k")
    assert key.last_used_at is None
    with django_capture_on_commit_callbacks(execute=True):
        assert Api(raw).get("/contacts").status_code == 200
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_last_used_is_written_after_the_request_transaction(db: None) -> None:
    """Inside the request's transaction the key's row is only read: an update there would
    hold its lock to the end of the request, queueing every request on the same key."""
    from django.db import transaction
    from django.test.utils import CaptureQueriesContext

    from tessera.core.apikeys import authenticate_key

    _, raw = create_api_key("k")
    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        authenticate_key(raw)
    assert not [q for q in queries.captured_queries if q["sql"].startswith("UPDATE")]


def cli_create_key() -> tuple[str, str]:
    """`tessera apikey create` for an admin key named "ci": what it prints, out and err."""
    out, err = StringIO(), StringIO()
    call_command("apikey", "create", "--name", "ci", "--scope", "admin", stdout=out, stderr=err)
    return out.getvalue().strip(), err.getvalue()


def test_cli_prints_the_new_key_once(db: None) -> None:
    raw, warning = cli_create_key()
    assert raw.startswith("tsk_")
    assert "cannot be shown again" in warning


def test_cli_creates_a_working_key_with_its_scopes(db: None) -> None:
    raw, _ = cli_create_key()
    stored = ApiKey.objects.get(name="ci")
    assert stored.scopes == ["admin"]
    assert authenticate_key(raw) == stored


def test_cli_lists_keys_without_their_secret(db: None) -> None:
    raw, _ = cli_create_key()
    listing = StringIO()
    call_command("apikey", "list", stdout=listing)
    assert ApiKey.objects.get(name="ci").id in listing.getvalue()
    assert raw not in listing.getvalue()


def test_a_key_revoked_from_the_cli_stops_working(db: None) -> None:
    raw, _ = cli_create_key()
    call_command("apikey", "revoke", ApiKey.objects.get(name="ci").id, stdout=StringIO())
    assert authenticate_key(raw) is None


def test_cli_rejects_an_unknown_key_id(db: None) -> None:
    with pytest.raises(CommandError):
        call_command("apikey", "revoke", "key_nope", stdout=StringIO())
