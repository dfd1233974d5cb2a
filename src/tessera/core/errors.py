"""Errors that carry their own HTTP meaning, rendered as RFC 9457 problem+json by the API.

Services raise these; they know nothing of HTTP beyond the status number, so the same error
reads well from the CLI, the portal and the API.
"""

from __future__ import annotations

from typing import Any

PROBLEM_CONTENT_TYPE = "application/problem+json"


class ProblemError(Exception):
    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"
    # Most errors undo everything the request wrote; a few (an order refused for lack of
    # balance) must keep their record of the refusal and its email.
    keeps_writes: bool = False
    # A server-side error whose outcome is unknown (Stripe unreachable after it may have
    # charged): a retry with the same Idempotency-Key must get this answer again, not a
    # second attempt.
    replay_on_retry: bool = False

    def __init__(
        self,
        detail: str = "",
        *,
        errors: list[dict[str, str]] | None = None,
        status: int | None = None,
        code: str | None = None,
        title: str | None = None,
        **extra: Any,
    ) -> None:
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        if title is not None:
            self.title = title
        self.detail = detail or self.title
        self.errors = errors
        self.extra = extra
        super().__init__(self.detail)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"urn:tessera:problem:{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class ValidationFailed(ProblemError):
    status = 422
    code = "validation_error"
    title = "The request is not valid"

    @classmethod
    def field(cls, field: str, message: str) -> ValidationFailed:
        return cls(f"{field}: {message}", errors=[{"field": field, "message": message}])


class MalformedRequest(ProblemError):
    status = 400
    code = "validation_error"
    title = "Malformed request body"


class NotFound(ProblemError):
    status = 404
    code = "not_found"
    title = "Not found"


class Unauthorized(ProblemError):
    status = 401
    code = "unauthorized"
    title = "Authentication required"


class Forbidden(ProblemError):
    status = 403
    code = "forbidden"
    title = "Not allowed"


class PayloadTooLarge(ProblemError):
    status = 413
    code = "payload_too_large"
    title = "Request body too large"


class UnsupportedMediaType(ProblemError):
    status = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


class Conflict(ProblemError):
    status = 409
    code = "conflict"
    title = "Conflict"


class IdempotencyConflict(ProblemError):
    status = 422
    code = "idempotency_conflict"
    title = "Idempotency key reused with a different request"


class IdempotencyInProgress(ProblemError):
    status = 409
    code = "idempotency_in_progress"
    title = "A request with this idempotency key is still running"


def validate_model(instance: Any, exclude: list[str] | None = None) -> None:
    """Run Django's model validation and raise it as a 422 with one error per field."""
    from django.core.exceptions import ValidationError as DjangoValidationError

    try:
        instance.full_clean(exclude=exclude, validate_unique=False)
    except DjangoValidationError as exc:
        errors = [
            {"field": field if field != "__all__" else "", "message": str(message)}
            for field, messages in exc.message_dict.items()
            for message in messages
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise ValidationFailed(detail, errors=errors) from exc
