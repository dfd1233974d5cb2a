"""Creating, checking and revoking API keys."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from tessera.core.models import ALL_SCOPES, SCOPE_READ, SCOPE_WRITE, ApiKey

KEY_PREFIX = "tsk_"
# Writing last_used_at on every request would turn every read into a write; a minute's
# resolution is enough to tell which keys are in use.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def digest(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def create_api_key(
    name: str, scopes: Iterable[str] = (SCOPE_READ, SCOPE_WRITE)
) -> tuple[ApiKey, str]:
    """Create a key and return it with the raw secret, which is never stored or shown again."""
    scopes = sorted(set(scopes))
    unknown = set(scopes) - set(ALL_SCOPES)
    if unknown:
        raise ValueError(f"unknown scope(s): {', '.join(sorted(unknown))}")
    if not name.strip():
        raise ValueError("a key needs a name")
    raw = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey.objects.create(
        name=name.strip(), prefix=raw[:12], key_hash=digest(raw), scopes=scopes
    )
    return key, raw


def authenticate_key(raw_key: str) -> ApiKey | None:
    if not raw_key or not raw_key.startswith(KEY_PREFIX) or len(raw_key) > 200:
        return None
    key = ApiKey.objects.filter(key_hash=digest(raw_key), revoked_at__isnull=True).first()
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        # After the request's transaction, in its own statement, and only if no other
        # request got there first: an update inside the transaction would hold the key's
        # row until the request ends, and every concurrent request on the same key that
        # saw the old timestamp would queue behind it.
        stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_RESOLUTION)
        transaction.on_commit(
            lambda: ApiKey.objects.filter(stale, pk=key.pk).update(last_used_at=now)
        )
        key.last_used_at = now
    return key


def revoke_api_key(key: ApiKey) -> None:
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
