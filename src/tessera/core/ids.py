"""Public record ids: a short type prefix and a ULID, e.g. ``con_01JD3Z...``.

ULIDs sort by creation time, so primary-key order is creation order: cursor pagination and
"newest first" need no second column, and ids never reveal how many records exist.
"""

from __future__ import annotations

import re
from typing import Any

from django.db import models
from ulid import ULID

_ID_SHAPE = re.compile(r"[a-z]{2,5}_[0-9A-HJKMNP-TV-Z]{26}")


def new_id(prefix: str) -> str:
    return f"{prefix}_{ULID()}"


def looks_like_id(value: str, prefix: str) -> bool:
    """Whether ``value`` could be an id we issued; anything else cannot exist, so callers
    answer "not found" without sending odd bytes (NUL, say) to the database."""
    return value.startswith(prefix + "_") and _ID_SHAPE.fullmatch(value) is not None


class PublicIdField(models.CharField):
    """A primary key that fills itself with ``new_id(prefix)`` when the object is built."""

    def __init__(self, *args: Any, prefix: str = "", **kwargs: Any) -> None:
        if not prefix:
            raise TypeError("PublicIdField needs a prefix")
        self.prefix = prefix
        kwargs["max_length"] = len(prefix) + 1 + 26
        kwargs["primary_key"] = True
        kwargs["editable"] = False
        super().__init__(*args, **kwargs)

    def has_default(self) -> bool:
        # Tells Model.save() to INSERT straight away rather than try an UPDATE first.
        return True

    def get_default(self) -> str:
        return new_id(self.prefix)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("max_length", None)
        kwargs.pop("primary_key", None)
        kwargs.pop("editable", None)
        kwargs["prefix"] = self.prefix
        return name, path, args, kwargs
