"""Fetching a record by its public id, or answering 404."""

from __future__ import annotations

from typing import Any, TypeVar

from django.db.models import Model, QuerySet

from tessera.core.errors import NotFound
from tessera.core.ids import PublicIdField, looks_like_id

M = TypeVar("M", bound=Model)


def get_by_id(source: type[M] | QuerySet[M], pk: str, noun: str, **problem: Any) -> M:
    """The record with public id ``pk``, or NotFound ("No <noun> <pk>"). An id that cannot
    be one of ours is not sent to the database at all (NUL bytes, say)."""
    queryset = source if isinstance(source, QuerySet) else source._default_manager.all()
    field = queryset.model._meta.pk
    prefix = field.prefix if isinstance(field, PublicIdField) else ""
    found = queryset.filter(pk=pk).first() if not prefix or looks_like_id(pk, prefix) else None
    if found is None:
        raise NotFound(f"No {noun} {pk}", **problem)
    return found
