"""A mutating API request is one transaction: an error response leaves nothing behind,
even when the handler wrote before it failed."""

from __future__ import annotations

import pytest

from tessera.core.errors import NotFound, ValidationFailed
from tessera.crm import services
from tessera.crm.models import Contact, TimelineEntry
from tessera.notifications.models import OutboundEmail
from tests.support.api import Api, assert_problem


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (ValidationFailed.field("x", "bad"), 422, "validation_error"),
        (NotFound("gone"), 404, "not_found"),
        (RuntimeError("crash"), 500, "internal_error"),
    ],
)
def test_writes_before_an_error_are_rolled_back(
    api: Api, monkeypatch: pytest.MonkeyPatch, error: Exception, status: int, code: str
) -> None:
    real_create = services.create_contact

    def create_then_fail(data):  # type: ignore[no-untyped-def]
        # Commits its own atomic block (a savepoint here), then the request fails.
        contact = real_create(data).record
        from tessera.notifications.services import queue_email

        queue_email("welcome", to="a@example.com", context={}, contact=contact)
        raise error

    monkeypatch.setattr(services, "create_contact", create_then_fail)
    assert_problem(api.post("/contacts", {"last_name": "Ghost"}), status, code)
    assert Contact.objects.count() == 0
    assert TimelineEntry.objects.count() == 0
    assert OutboundEmail.objects.count() == 0
