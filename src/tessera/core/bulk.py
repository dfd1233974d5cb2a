"""Inserting many rows fast: COPY on PostgreSQL, one prepared statement run for every row
on SQLite.

For the tens of thousands of rows a CSV import writes, ``bulk_create`` spends several
times longer building its SQL text and adapting parameters than the database spends
storing the rows. Both paths here send each value once, as a parameter; only table and
column names (from the model's metadata) are ever put into SQL text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection
from django.db.models import Model

_AS_IS = frozenset({"CharField", "TextField", "EmailField", "SlugField", "URLField"})


def insert_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Insert ``rows`` (values already prepared for the database) into ``table``; returns
    how many were written. ``table`` and ``columns`` are unquoted names."""
    qn = connection.ops.quote_name
    names = ", ".join(qn(c) for c in columns)
    count = 0
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            raw = cursor.cursor  # psycopg's own cursor, for COPY
            with raw.copy(f"COPY {qn(table)} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
                    count += 1
        else:
            marks = ", ".join(["%s"] * len(columns))
            batch = list(rows)
            cursor.executemany(f"INSERT INTO {qn(table)} ({names}) VALUES ({marks})", batch)  # noqa: S608 (names only)
            count = len(batch)
    return count


def insert_objects(objs: Sequence[Model]) -> int:
    """Insert unsaved model instances of one model whose primary keys are already set (as
    ``bulk_create`` would, defaults and ``auto_now`` included), without their signals."""
    if not objs:
        return 0
    model = type(objs[0])
    if any(obj.pk is None for obj in objs):
        # COPY cannot hand back generated keys; our public ids are set on construction.
        raise ValueError(f"insert_objects needs primary keys set ({model.__name__})")
    if connection.vendor not in ("postgresql", "sqlite"):  # pragma: no cover
        model._default_manager.bulk_create(objs)
        return len(objs)
    fields = [f for f in model._meta.concrete_fields if f.column]
    # Text columns go as they are; only the other fields pay for Django's conversion
    # (dates, JSON, auto_now), which is most of the cost for wide rows.
    plain = [f.get_internal_type() in _AS_IS for f in fields]
    attnames = [f.attname for f in fields]
    rows = (
        [
            getattr(obj, name) if as_is else f.get_db_prep_save(f.pre_save(obj, True), connection)
            for f, name, as_is in zip(fields, attnames, plain, strict=True)
        ]
        for obj in objs
    )
    written = insert_rows(model._meta.db_table, [str(f.column) for f in fields], rows)
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias
    return written
