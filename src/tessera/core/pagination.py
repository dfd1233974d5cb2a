"""Cursor pagination over a primary key that sorts by creation time (see core.ids).

A cursor is an opaque token naming the last id of the page served; the next page starts
strictly after it, so rows inserted meanwhile never shift a page or repeat one.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Generic, TypeVar

from django.conf import settings
from django.db.models import Model, QuerySet

from tessera.core.errors import ValidationFailed

M = TypeVar("M", bound=Model)


@dataclass
class Page(Generic[M]):
    items: list[M]
    next_cursor: str | None


def encode_cursor(last_key: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"k": last_key}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        key = data["k"]
        if not isinstance(key, str):
            raise TypeError
        return key
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise ValidationFailed.field("cursor", "is not a cursor this API returned") from exc


def check_limit(limit: int | None) -> int:
    if limit is None:
        return int(settings.API_PAGE_SIZE_DEFAULT)
    if limit < 1 or limit > settings.API_PAGE_SIZE_MAX:
        raise ValidationFailed.field("limit", f"must be between 1 and {settings.API_PAGE_SIZE_MAX}")
    return limit


def paginate(
    queryset: QuerySet[M], *, limit: int | None, cursor: str | None, newest_first: bool = True
) -> Page[M]:
    size = check_limit(limit)
    qs = queryset.order_by("-pk" if newest_first else "pk")
    if cursor:
        after = decode_cursor(cursor)
        qs = qs.filter(pk__lt=after) if newest_first else qs.filter(pk__gt=after)
    rows = list(qs[: size + 1])
    has_more = len(rows) > size
    rows = rows[:size]
    return Page(items=rows, next_cursor=encode_cursor(str(rows[-1].pk)) if has_more else None)
