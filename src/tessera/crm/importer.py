"""CSV import of contacts with duplicate matching.

Streams the file in chunks: per chunk, one query finds the candidates of every row by
match key, rows are scored in memory, new contacts, their keys and timeline entries are
bulk-inserted (``services.create_contacts_in_bulk``), and the chunk commits. Memory stays
bounded by the chunk size whatever the file size. Rows that match rows earlier in the same
file link to them.

Each row ends up one of:
- created: no match, a new Contact;
- linked: matches one existing Contact or Lead, nothing new is written;
- flagged: matches several existing records (likely duplicates of each other already):
  linked to the best and listed for review;
- rejected: invalid (with the reason), or matched by a ``block`` rule.

Reading and cleaning rows is ``import_rows``; matching a chunk, ``import_matching``.
"""

from __future__ import annotations

import csv
import gc
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction

from tessera.core.locking import advisory_lock
from tessera.crm import csv_dialect
from tessera.crm.import_matching import ChunkMatcher
from tessera.crm.import_rows import (
    Outcome,
    Prepared,
    RowResult,
    add_notes,
    chunks,
    header_score,
    prepare_chunk,
    read_header,
    read_rows,
)
from tessera.crm.inputs import NewContacts
from tessera.crm.matching import engine
from tessera.crm.matching.keys import lock_names, record_keys
from tessera.crm.services import create_contacts_in_bulk

CHUNK_ROWS = 2000


@dataclass
class Summary:
    created: int = 0
    linked: int = 0
    flagged: int = 0
    rejected: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    dialect: csv_dialect.Dialect = field(default_factory=csv_dialect.Dialect)
    # Rows with bytes that were not UTF-8, read as Windows-1252 (see csv_dialect).
    reencoded_rows: int = 0

    @property
    def total(self) -> int:
        return self.created + self.linked + self.flagged + self.rejected

    def add(self, result: RowResult) -> None:
        setattr(self, result.status, getattr(self, result.status) + 1)


@contextmanager
def _collect_young_objects_only() -> Iterator[Callable[[], None]]:
    """Keep the garbage collector to the objects of the chunk at hand; yields the call to
    make between chunks.

    Each chunk leaves tens of thousands of objects alive long enough to reach the oldest
    generation, which makes Python run full collections, and a full collection walks every
    object of the process (modules, and the normalisation caches, which grow with every
    new value: 0.05-0.2 s each, a fifth of the import's time). Freezing what exists before
    each chunk leaves those out (objects the chunk drops are still freed as usual, by
    reference counting); unfreezing at the end hands everything back to the collector."""
    gc.freeze()
    try:
        yield gc.freeze
    finally:
        gc.unfreeze()


def _write_chunk(results: list[Outcome], matcher: ChunkMatcher) -> None:
    """The chunk's new contacts, through the CRM's bulk create: their keys, timeline
    entries and activity marks as a single create writes them."""
    new = [c for _, c in results if c is not None]
    if not new:
        return
    if matcher.rekey_after_save:
        rules = matcher.rules["contact"]
        keys = {c.pk: record_keys(rules, engine.record_values(c)) for c in new}
    else:
        keys = {c.pk: matcher.created_keys[c.pk] for c in new}
    create_contacts_in_bulk(NewContacts(new, keys, summary="Contact created (CSV import)"))


def _match_and_write(prepared: Prepared, matcher: ChunkMatcher) -> list[Outcome]:
    """Match a prepared chunk and write its new contacts, in one transaction."""
    with transaction.atomic():
        # The same locks an API create takes: a person created through the API while this
        # chunk runs is either seen here or sees this chunk's.
        advisory_lock(
            lock_names(
                k
                for lookup, own in prepared.keys.values()
                for ks in (*lookup.values(), own)
                for k in ks
            )
        )
        matched = matcher.process(prepared.valid, prepared.keys)
        _write_chunk(matched, matcher)
    return matched


@dataclass
class _Run:
    """One import under way: where rows come from, where results go."""

    reader: csv.DictReader[str]
    mapping: dict[str, str]
    dialect: csv_dialect.Dialect
    writer: Any  # csv.writer's
    summary: Summary
    progress: Callable[[int], None] | None
    next_chunk: Callable[[], None]

    def record(self, prepared: Prepared, results: list[Outcome]) -> None:
        """Count the chunk's results and write them, one line a row, in row order."""
        self.summary.reencoded_rows += add_notes(results, prepared.notes)
        for result, _ in sorted(results, key=lambda r: r[0].row):
            self.summary.add(result)
            self.writer.writerow(
                [result.row, result.status, result.object, result.id,
                 "" if result.score is None else result.score, result.reason]
            )  # fmt: skip
        if self.progress:
            self.progress(prepared.size)

    def run(self, chunk_rows: int) -> None:
        matcher = ChunkMatcher()
        pending = chunks(read_rows(self.reader), chunk_rows)

        def prepare() -> Prepared | None:
            chunk = next(pending, None)
            return (
                None
                if chunk is None
                else prepare_chunk(chunk, self.mapping, matcher.keys, self.dialect)
            )

        # While a chunk waits on the database, the next one is read, cleaned and keyed in
        # a helper thread (pure computation, it never touches the database; both threads
        # share the normalisation caches).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import") as helper:
            upcoming = helper.submit(prepare)
            while (prepared := upcoming.result()) is not None:
                upcoming = helper.submit(prepare)
                self.next_chunk()
                self.record(prepared, prepared.rejected + _match_and_write(prepared, matcher))


def import_contacts(
    path: Path,
    *,
    dry_run: bool = False,
    results_path: Path | None = None,
    progress: Callable[[int], None] | None = None,
    chunk_rows: int = CHUNK_ROWS,
    delimiter: str | None = None,
    encoding: str | None = None,
) -> Summary:
    """Import ``path``; write one result line per row to ``results_path``. The file's
    ``delimiter`` and ``encoding`` are detected unless given (see csv_dialect)."""
    summary = Summary()
    summary.dialect = dialect = csv_dialect.detect(
        path, header_score, delimiter=delimiter, encoding=encoding
    )
    results_path = results_path or path.with_name(path.stem + ".results.csv")
    with (
        # Bytes the encoding cannot decode are marked, to reject or note their rows.
        path.open(newline="", encoding=dialect.encoding, errors=csv_dialect.ERRORS) as src,
        results_path.open("w", newline="", encoding="utf-8") as dst,
        transaction.atomic() if dry_run else nullcontext(),
        _collect_young_objects_only() as next_chunk,
    ):
        reader = csv.DictReader(src, delimiter=dialect.delimiter)
        mapping, summary.ignored_columns = read_header(reader, dialect)
        writer = csv.writer(dst)
        writer.writerow(["row", "status", "object", "id", "score", "reason"])
        _Run(reader, mapping, dialect, writer, summary, progress, next_chunk).run(chunk_rows)
        if dry_run:
            transaction.set_rollback(True)
    return summary
