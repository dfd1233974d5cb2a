"""The demo's API key: the same at every start, until the person running it revokes it."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from django.core.management import call_command

from tessera.backoffice.demo import demo_api_key
from tessera.core.apikeys import digest
from tessera.core.models import ApiKey
from tests.support.api import Api

pytestmark = pytest.mark.django_db


def _authenticates(raw_key: str) -> bool:
    return bool(Api(raw_key).get("/contacts").status_code == 200)


def test_a_restarted_demo_prints_the_same_key(tmp_path: Path) -> None:
    state = tmp_path / "tessera.sqlite3-demo.json"
    first, _ = demo_api_key(state)
    second, note = demo_api_key(state)
    assert second == first
    assert note == ""


def test_the_key_from_the_first_start_authenticates_after_the_second(tmp_path: Path) -> None:
    state = tmp_path / "tessera.sqlite3-demo.json"
    first, _ = demo_api_key(state)
    second, _ = demo_api_key(state)
    assert _authenticates(first)
    assert _authenticates(second)


def test_the_raw_key_is_kept_readable_by_its_owner_only(tmp_path: Path) -> None:
    state = tmp_path / "tessera.sqlite3-demo.json"
    demo_api_key(state)
    assert stat.S_IMODE(state.stat().st_mode) == 0o600


def test_a_key_revoked_by_the_user_is_replaced_and_the_demo_says_so(tmp_path: Path) -> None:
    state = tmp_path / "tessera.sqlite3-demo.json"
    first, _ = demo_api_key(state)
    call_command("apikey", "revoke", ApiKey.objects.get(key_hash=digest(first)).pk)
    second, note = demo_api_key(state)
    assert second != first
    assert "revoked" in note
    assert _authenticates(second)
