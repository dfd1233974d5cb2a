"""What Tessera's own layers learn about a request while it runs, in one typed object.

The API's authentication, its idempotency middleware, its exception handlers and the log
filter pass facts to one another about the same request: the API key found (looked up
once), whether the key was refused often enough to lock the client out, whether an error
keeps the writes made before it, whether its answer is already stored. Each is a field
here rather than an ad hoc attribute on Django's request, so a reader finds every one in
one place and mypy checks their types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.http import HttpRequest

if TYPE_CHECKING:
    from tessera.core.models import ApiKey

ATTRIBUTE = "tessera"


@dataclass
class RequestState:
    # The API key the request authenticated with, once looked up (None: none or refused).
    api_key: ApiKey | None = None
    api_key_checked: bool = False
    # Seconds left on a lockout for too many refused keys from this client, if locked out.
    locked_out_for: int | None = None
    # The error answered commits the writes made before it (a declined card's record).
    keep_writes: bool = False
    # The 5xx answered is the final answer for its Idempotency-Key, replayed on a retry.
    replay_error: bool = False
    # The idempotency record already holds the answer (stored in the request's transaction).
    response_stored: bool = False
    # The crash behind a 500 is logged with its traceback; Django's own line is left out.
    error_logged: bool = False


def state_of(request: HttpRequest) -> RequestState:
    """The request's state, made on first use."""
    state = getattr(request, ATTRIBUTE, None)
    if not isinstance(state, RequestState):
        state = RequestState()
        setattr(request, ATTRIBUTE, state)
    return state


def peek_state(request: object) -> RequestState | None:
    """The state if this request has one (a log record's request may be any object)."""
    state = getattr(request, ATTRIBUTE, None)
    return state if isinstance(state, RequestState) else None
