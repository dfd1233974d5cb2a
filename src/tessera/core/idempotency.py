"""Idempotency keys: the same key and body answer the first response again, once done.

Flow (pretix-style "lock, then return if done"):
1. ``begin`` inserts the key row and commits, before the request runs. A duplicate that
   arrives meanwhile finds the row in progress and gets 409 ``idempotency_in_progress``.
2. The request runs; ``complete`` stores its response in the request's own transaction.
3. A later duplicate with the same fingerprint gets the stored response; with a different
   body, 422 ``idempotency_conflict``.
A row left in progress by a crash is taken over by a retry once ``IDEMPOTENCY_LOCK_SECONDS``
have passed, so a dead request never wedges its key for good.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from tessera.core.errors import IdempotencyConflict, IdempotencyInProgress, ValidationFailed
from tessera.core.models import ApiKey, IdempotencyKey

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class StoredResponse:
    status: int
    content_type: str
    body: bytes


def check_key(raw: str) -> str:
    key = raw.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationFailed.field(
            "Idempotency-Key", f"must be 1 to {MAX_KEY_LENGTH} printable characters"
        )
    return key


def fingerprint(method: str, path: str, body: bytes) -> str:
    """Hash of what the request asks for. JSON bodies are canonicalised, so key order and
    white space do not count as a different request."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    h = hashlib.sha256()
    for part in (method.upper().encode(), b"\0", path.encode(), b"\0", canonical):
        h.update(part)
    return h.hexdigest()


def begin(
    api_key: ApiKey, key: str, *, method: str, path: str, fp: str
) -> tuple[IdempotencyKey, StoredResponse | None]:
    """Claim ``key`` for this request. Returns the row, and the stored response if the
    first request already finished (the caller replays it and does nothing else)."""
    now = timezone.now()
    try:
        with transaction.atomic():
            row = IdempotencyKey.objects.create(
                api_key=api_key, key=key, method=method, path=path, fingerprint=fp, locked_at=now
            )
        return row, None
    except IntegrityError:
        pass

    row = IdempotencyKey.objects.get(api_key=api_key, key=key)
    if row.fingerprint != fp:
        raise IdempotencyConflict(
            "This Idempotency-Key was first used with a different request "
            f"({row.method} {row.path}); use a new key for a new request."
        )
    if row.status == IdempotencyKey.Status.COMPLETED:
        return row, StoredResponse(
            status=row.response_status or 200,
            content_type=row.response_content_type,
            body=bytes(row.response_body or b""),
        )
    stale_before = now - timedelta(seconds=settings.IDEMPOTENCY_LOCK_SECONDS)
    if row.locked_at < stale_before:
        # Conditional on the lock time we read, so of two retries only one takes it over.
        taken = IdempotencyKey.objects.filter(
            pk=row.pk, status=IdempotencyKey.Status.IN_PROGRESS, locked_at=row.locked_at
        ).update(locked_at=now)
        if taken:
            row.locked_at = now
            return row, None
    raise IdempotencyInProgress(
        "The first request with this Idempotency-Key has not finished; retry shortly."
    )


def complete(row: IdempotencyKey, response: StoredResponse) -> None:
    IdempotencyKey.objects.filter(pk=row.pk).update(
        status=IdempotencyKey.Status.COMPLETED,
        response_status=response.status,
        response_content_type=response.content_type,
        response_body=response.body,
        completed_at=timezone.now(),
    )


def release(row: IdempotencyKey) -> None:
    """Forget the key, so the client may retry the same request (after a 5xx, say)."""
    IdempotencyKey.objects.filter(pk=row.pk, status=IdempotencyKey.Status.IN_PROGRESS).delete()


def prune_idempotency_keys(older_than: timedelta | None = None) -> int:
    age = older_than or timedelta(hours=settings.IDEMPOTENCY_RETENTION_HOURS)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=timezone.now() - age).delete()
    return deleted
