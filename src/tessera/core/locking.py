"""Locks beyond row locks.

``advisory_lock`` serialises work on things that have no row yet (e.g. "the person with
this email", before their contact exists). On PostgreSQL it takes transaction-scoped
advisory locks in a fixed order, so two callers never deadlock; on SQLite the write
transaction itself (BEGIN IMMEDIATE) already serialises writers, so it does nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from django.db import connection, transaction


def _lock_id(name: str) -> int:
    # A signed 64-bit integer, as pg_advisory_xact_lock(bigint) takes.
    return int.from_bytes(
        hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True
    )


def advisory_lock(names: Iterable[str]) -> None:
    """Lock ``names`` until the current transaction ends. Must run inside ``atomic()``."""
    if connection.vendor != "postgresql":
        return
    if not connection.in_atomic_block:
        raise RuntimeError("advisory_lock needs a transaction (use transaction.atomic)")
    ids = sorted({_lock_id(n) for n in names})
    if not ids:
        return
    with connection.cursor() as cur:
        # One round trip for all of them (an import chunk takes hundreds); unnest yields
        # the sorted array in order, and each row's lock is taken as the row is produced.
        cur.execute("SELECT pg_advisory_xact_lock(id) FROM unnest(%s::bigint[]) AS t(id)", [ids])


__all__ = ["advisory_lock", "transaction"]
