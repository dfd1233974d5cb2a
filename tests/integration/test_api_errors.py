"""Every API error path: problem+json, the right status and code, and nothing written."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.conf import settings

from tessera.core.models import SCOPE_READ
from tessera.crm.models import Account, Contact, Lead, TimelineEntry
from tessera.notifications.models import OutboundEmail
from tests.support.api import Api, assert_problem


def counts() -> tuple[int, ...]:
    return (
        Contact.objects.count(),
        Lead.objects.count(),
        Account.objects.count(),
        TimelineEntry.objects.count(),
        OutboundEmail.objects.count(),
    )


@pytest.fixture
def nothing_written(db: None):  # type: ignore[no-untyped-def]
    before = counts()
    yield
    assert counts() == before, "an error response wrote something"


@pytest.mark.usefixtures("nothing_written")
class TestBadInput:
    def test_malformed_json(self, api: Api) -> None:
        body = assert_problem(
            api.post("/contacts", raw=b'{"last_name": "x",'), 400, "validation_error"
        )
        assert "JSON" in body["detail"]

    @pytest.mark.parametrize("raw", [b"[1, 2]", b'"text"', b"42", b"null"])
    def test_json_that_is_not_an_object(self, api: Api, raw: bytes) -> None:
        assert_problem(api.post("/contacts", raw=raw), 400, "validation_error")

    def test_invalid_utf8(self, api: Api) -> None:
        assert_problem(
            api.post("/contacts", raw=b'{"last_name": "\xff\xfe"}'), 400, "validation_error"
        )

    def test_wrong_types(self, api: Api) -> None:
        body = assert_problem(
            api.post("/contacts", {"last_name": ["x"], "birthdate": "not-a-date"}),
            422,
            "validation_error",
        )
        assert {e["field"] for e in body["errors"]} == {"last_name", "birthdate"}

    def test_unknown_field(self, api: Api) -> None:
        body = assert_problem(
            api.post("/contacts", {"last_name": "x", "favourite_colour": "red"}),
            422,
            "validation_error",
        )
        assert body["errors"] == [{"field": "favourite_colour", "message": "is not a known field"}]

    def test_missing_required_field(self, api: Api) -> None:
        body = assert_problem(api.post("/contacts", {"first_name": "x"}), 422, "validation_error")
        assert body["errors"] == [{"field": "last_name", "message": "is required"}]

    def test_blank_required_field(self, api: Api) -> None:
        assert_problem(api.post("/accounts", {"name": ""}), 422, "validation_error")
        assert_problem(api.post("/leads", {"last_name": "   "}), 422, "validation_error")

    def test_invalid_email(self, api: Api) -> None:
        body = assert_problem(
            api.post("/contacts", {"last_name": "x", "email": "not-an-email"}),
            422,
            "validation_error",
        )
        assert body["errors"][0]["field"] == "email"

    def test_too_long_value(self, api: Api) -> None:
        assert_problem(api.post("/contacts", {"last_name": "x" * 500}), 422, "validation_error")

    @pytest.mark.parametrize("headers", [{}, {"Idempotency-Key": "big-1"}])
    def test_body_over_the_size_limit(self, api: Api, headers: dict[str, str]) -> None:
        body = {"last_name": "Big", "title": "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)}
        problem = assert_problem(
            api.post("/contacts", body, headers=headers), 413, "payload_too_large"
        )
        assert f"{settings.DATA_UPLOAD_MAX_MEMORY_SIZE:,d} bytes" in problem["detail"]
        assert not Contact.objects.exists()

    def test_unknown_account_reference(self, api: Api) -> None:
        body = assert_problem(
            api.post("/contacts", {"last_name": "x", "account_id": "acc_nope"}),
            404,
            "not_found",
        )
        assert body["errors"][0]["field"] == "account_id"

    @pytest.mark.parametrize(
        "path", ["/contacts/con_missing", "/leads/lea_missing", "/accounts/acc_x"]
    )
    def test_unknown_id(self, api: Api, path: str) -> None:
        assert_problem(api.get(path), 404, "not_found")

    def test_unknown_id_timeline(self, api: Api) -> None:
        assert_problem(api.get("/contacts/con_missing/timeline"), 404, "not_found")

    def test_control_characters(self, api: Api) -> None:
        body = assert_problem(api.post("/accounts", {"name": "Acme\x00"}), 422, "validation_error")
        assert body["errors"][0]["field"] == "name"
        assert_problem(api.get("/contacts", email="a\x00@b.c"), 422, "validation_error")
        assert_problem(api.get("/contacts/con_\x00"), 404, "not_found")

    def test_unknown_query_parameter(self, api: Api) -> None:
        body = assert_problem(api.get("/contacts", emial="x@y.z"), 422, "validation_error")
        assert body["errors"] == [{"field": "emial", "message": "is not a known parameter"}]

    def test_wrong_method(self, api: Api) -> None:
        r = api.call("DELETE", "/contacts")
        assert_problem(r, 405, "method_not_allowed")
        assert "POST" in r["Allow"]

    def test_unknown_url(self, api: Api) -> None:
        assert_problem(api.get("/no-such-thing"), 404, "not_found")
        assert_problem(api.post("/no-such-thing", {}), 404, "not_found")

    @pytest.mark.parametrize(
        "params", [{"limit": 0}, {"limit": 101}, {"limit": "ten"}, {"cursor": "!!"}]
    )
    def test_bad_pagination(self, api: Api, params: dict) -> None:
        assert_problem(api.get("/contacts", **params), 422, "validation_error")


@pytest.mark.usefixtures("nothing_written")
class TestAuth:
    def test_no_key(self) -> None:
        r = Api(None).post("/contacts", {"last_name": "x"})
        assert_problem(r, 401, "unauthorized")
        assert r["WWW-Authenticate"].startswith("Bearer")
        assert_problem(Api(None).get("/contacts"), 401, "unauthorized")

    @pytest.mark.parametrize("header", ["Bearer tsk_wrong", "Basic abc", "Bearer ", "tsk_x"])
    def test_bad_key(self, db: None, header: str) -> None:
        r = Api(None).post("/contacts", {"last_name": "x"}, headers={"Authorization": header})
        assert_problem(r, 401, "unauthorized")

    def test_revoked_key(self, db: None) -> None:
        from tessera.core.apikeys import create_api_key, revoke_api_key

        key, raw = create_api_key("old")
        revoke_api_key(key)
        assert_problem(Api(raw).get("/contacts"), 401, "unauthorized")

    def test_key_without_scope(self, make_api: Callable[..., Api]) -> None:
        reader = make_api(SCOPE_READ)
        assert reader.get("/contacts").status_code == 200
        assert_problem(reader.post("/contacts", {"last_name": "x"}), 403, "forbidden")

    def test_unauthenticated_request_with_idempotency_key(self, db: None) -> None:
        r = Api(None).post("/contacts", {"last_name": "x"}, headers={"Idempotency-Key": "k1"})
        assert_problem(r, 401, "unauthorized")


def test_unexpected_error_is_a_problem_and_rolls_back(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tessera.crm import services

    real = services.record_timeline

    def explode(*args, **kwargs):  # type: ignore[no-untyped-def]
        real(*args, **kwargs)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(services, "record_timeline", explode)
    before = counts()
    body = assert_problem(api.post("/contacts", {"last_name": "x"}), 500, "internal_error")
    assert "disk on fire" not in body["detail"]  # no internals leak to clients
    assert counts() == before
