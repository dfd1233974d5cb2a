"""The value of a field a partial change leaves as it is.

A PATCH distinguishes a field not sent (leave it) from one sent as null (clear it, where
the field may be empty). Services take frozen dataclasses whose fields default to
``UNSET``; None keeps its meaning of "clear"."""

from __future__ import annotations

from enum import Enum


class Unset(Enum):
    """A field a change leaves as it is (None would clear it)."""

    UNSET = "unset"


UNSET = Unset.UNSET
