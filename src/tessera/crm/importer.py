"""CSV import of contacts with duplicate matching.

Streams the file in chunks: per chunk, one query finds the candidates of every row by
match key, rows are scored in memory, new contacts, their keys and timeline entries are
bulk-inserted, and the chunk commits. Memory stays bounded by the chunk size whatever the
file size. Rows that match rows earlier in the same file link to them.

Each row ends up one of:
- created: no match, a new Contact;
- linked: matches one existing Contact or Lead, nothing new is written;
- flagged: matches several existing records (likely duplicates of each other already):
  linked to the best and listed for review;
- rejected: invalid (with the reason), or matched by a ``block`` rule.
"""

from __future__ import annotations

import csv
import gc
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from tessera.core.bulk import insert_objects
from tessera.core.locking import advisory_lock
from tessera.crm import csv_dialect
from tessera.crm.matching import engine
from tessera.crm.matching.keys import (
    lock_names,
    lookup_keys,
    record_keys,
    same_keys,
)
from tessera.crm.matching.rules import active_rules
from tessera.crm.matching.values import record_phone_e164
from tessera.crm.models import Contact, TimelineEntry
from tessera.crm.services import PERSON_FIELDS

CHUNK_ROWS = 2000
MAX_LENGTHS = {f.name: f.max_length for f in Contact._meta.fields if getattr(f, "max_length", None)}

# Header spellings seen in exports from CRMs, spreadsheets and mail tools.
_ALIASES = {
    "first_name": ["firstname", "first", "givenname", "forename", "fname"],
    "last_name": ["lastname", "last", "surname", "familyname", "lname"],
    "email": ["email", "emailaddress", "mail", "email1", "primaryemail"],
    "phone": ["phone", "phonenumber", "telephone", "tel", "mobile", "mobilephone", "workphone"],
    "company": ["company", "companyname", "organization", "organisation", "employer",
                "account", "accountname"],
    "title": ["title", "jobtitle", "position", "role"],
    "street": ["street", "address", "streetaddress", "address1", "addressline1", "mailingstreet"],
    "city": ["city", "town", "locality", "mailingcity"],
    "postal_code": ["postalcode", "zip", "zipcode", "postcode", "mailingpostalcode"],
    "country": ["country", "countrycode", "mailingcountry"],
    "birthdate": ["birthdate", "dateofbirth", "dob", "birthday"],
}  # fmt: skip
# German, French and Spanish spellings (spreadsheets in those locales write semicolons),
# as map_headers sees them: "Straße" is "strasse", "Código postal" "codigopostal". No job
# title nor birth date: "Titel" is an academic title in German, and a local date
# ("10.12.1815") would reject the row where the unmapped column is only ignored.
_LOCAL_ALIASES = {
    "first_name": ["vorname", "prenom", "nombre"],
    "last_name": ["nachname", "familienname", "nom", "nomdefamille", "apellido", "apellidos"],
    "email": ["emailadresse", "courriel", "adresseemail", "correo", "correoelectronico"],
    "phone": ["telefon", "telefonnummer", "mobil", "handy", "portable", "telefono", "movil"],
    "company": ["firma", "unternehmen", "societe", "entreprise", "empresa"],
    "street": ["strasse", "adresse", "rue", "calle", "direccion"],
    "city": ["ort", "stadt", "wohnort", "ville", "ciudad", "localidad"],
    "postal_code": ["plz", "postleitzahl", "codepostal", "codigopostal"],
    "country": ["land", "pays", "pais"],
}
HEADER_MAP = {
    alias: name
    for table in (_ALIASES, _LOCAL_ALIASES)
    for name, aliases in table.items()
    for alias in aliases
}
_CONTROL = re.compile(r"[\x00-\x1f]")


def _header_key(header: str) -> str:
    """The header as HEADER_MAP spells it: case folded ("ß" is "ss"), accents stripped
    (NFKD splits "é" into "e" and a combining accent), letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", unicodedata.normalize("NFKD", header.casefold()))


def header_score(headers: list[str]) -> tuple[int, int]:
    """How well the importer knows these headers: whether they have a last-name column
    (without one the file is refused), then how many map to a field. Detecting the
    delimiter, the best split of the header line wins."""
    mapping, _ = map_headers(headers)
    return int("last_name" in mapping.values()), len(mapping)


def map_headers(headers: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """CSV header -> our field; and the headers we do not know (ignored, and reported)."""
    mapping: dict[str, str] = {}
    ignored: list[str] = []
    for header in headers:
        target = HEADER_MAP.get(_header_key(header))
        if target and target not in mapping.values():
            mapping[header] = target
        else:
            ignored.append(header)
    return mapping, ignored


@dataclass
class RowResult:
    row: int
    status: str
    object: str = ""
    id: str = ""
    score: int | None = None
    reason: str = ""


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


def clean_row(raw: dict[str, str], mapping: dict[str, str]) -> dict[str, Any]:
    """The row as contact fields; ValueError with a reason if it cannot be a contact."""
    data: dict[str, Any] = {}
    for header, name in mapping.items():
        value = " ".join((raw.get(header) or "").split())
        if value:
            data[name] = value
    if not data.get("last_name"):
        raise ValueError("last name is missing")
    for name, value in data.items():
        limit = MAX_LENGTHS.get(name)
        if limit and isinstance(value, str) and len(value) > limit:
            raise ValueError(f"{name} is longer than {limit} characters")
        if _CONTROL.search(value):
            raise ValueError(f"{name} contains control characters")
    if "email" in data:
        data["email"] = data["email"].lower()
        try:
            validate_email(data["email"])
        except ValidationError as exc:
            raise ValueError(f"email {data['email']!r} is not valid") from exc
    if "birthdate" in data:
        try:
            data["birthdate"] = date.fromisoformat(data["birthdate"])
        except ValueError as exc:
            raise ValueError(f"birthdate {data['birthdate']!r} is not YYYY-MM-DD") from exc
    return data


# A row the CSV reader could not read, with the reason.
Unreadable = str
Raw = dict[str, str] | Unreadable


def _rows(reader: csv.DictReader[str]) -> Iterator[Raw]:
    """The file's rows; one the reader refuses (a cell over its size limit, say) is its
    reason instead, and reading goes on at the next line."""
    while True:
        first_line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield f"unreadable CSV at line {first_line}: {exc} (is a quote left open?)"
            continue
        if reader.line_num > first_line and any("\n" in (v or "") for v in row.values()):
            # Legal CSV, but no contact field holds a line break: a quote opened and never
            # closed swallows the lines after it into one cell. Say where, so it can be fixed.
            yield (
                f"a quoted cell runs from line {first_line} to {reader.line_num}; "
                "is a quote left open?"
            )
            continue
        yield row


def _chunks(rows: Iterator[Raw], size: int) -> Iterator[list[tuple[int, Raw]]]:
    chunk: list[tuple[int, Raw]] = []
    for number, row in enumerate(rows, start=2):  # row 1 is the header
        chunk.append((number, row))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# row number -> (its lookup keys per target, its own keys as a contact)
RowKeys = dict[int, tuple[dict[str, set[str]], set[str]]]


class ChunkMatcher:
    """Matches one chunk of rows against the database and against itself."""

    def __init__(self) -> None:
        self.rules = {t: active_rules(t) for t in ("contact", "lead")}
        # Leads have the contacts' criteria, so their keys are the same: computed once.
        self.same_as: dict[str, str] = {}
        for target, rules in self.rules.items():
            computed = (t for t, s in self.same_as.items() if t == s)
            self.same_as[target] = next(
                (t for t in computed if same_keys(self.rules[t], rules)), target
            )
        # The match keys of the contacts ``process`` creates, by id, for ``_write_chunk``.
        # A new contact's keys are its row's own, unless a rule reads a field that rows do
        # not set (one that saving fills in): then they are computed from the saved record.
        self.created_keys: dict[str, set[str]] = {}
        self.rekey_after_save = any(
            c.field not in PERSON_FIELDS for r in self.rules["contact"] for c in r.criteria
        )

    def _lookup_keys(self, data: dict[str, Any]) -> tuple[dict[str, set[str]], set[str]]:
        """The row's keys to look up each target by, and its own contact keys."""
        keys: dict[str, set[str]] = {}
        own: set[str] = set()
        for target, rules in self.rules.items():
            source = self.same_as[target]
            if source != target:
                keys[target] = keys[source]
                continue
            keys[target], mine = lookup_keys(rules, data)
            if target == "contact":
                own = mine
        return keys, own

    def keys(self, rows: list[tuple[int, dict[str, Any]]]) -> RowKeys:
        """Each row's lookup keys per target and own contact keys: computing only, no
        database, so this may run in another thread."""
        return {number: self._lookup_keys(data) for number, data in rows}

    def process(
        self, rows: list[tuple[int, dict[str, Any]]], keys: RowKeys | None = None
    ) -> list[tuple[RowResult, Contact | None]]:
        """Match the rows (with their ``keys()``, computed here if not given)."""
        keyed = self.keys(rows) if keys is None else keys
        keys_by_row = {number: lookup for number, (lookup, _) in keyed.items()}
        wanted = {t: set().union(*(k[t] for k in keys_by_row.values())) for t in self.rules}
        by_key = engine.ids_by_key(wanted)
        stored_by_id = {
            t: engine.load_records(t, (i for ids in by_key[t].values() for i in ids))
            for t in self.rules
        }
        new_keys: dict[str, list[Contact]] = {}  # this chunk's new contacts, by key
        self.created_keys = {}
        out: list[tuple[RowResult, Contact | None]] = []
        for number, data in rows:
            matches: list[engine.Match] = []
            for target, rules in self.rules.items():
                row_keys = keys_by_row[number][target]
                found, records = by_key[target], stored_by_id[target]
                ids = {i for k in row_keys for i in found.get(k, ())}
                stored = [records[i] for i in sorted(ids) if i in records]
                if target == "contact":
                    seen: set[str] = set()
                    for k in row_keys:
                        for c in new_keys.get(k, ()):
                            if c.pk not in seen:
                                seen.add(c.pk)
                                stored.append(c)
                matches += engine.score_candidates(target, rules, data, stored)
            matches.sort(key=engine.rank)
            blocked = [m for m in matches if m.action == "block"]
            if blocked:
                listed = ", ".join(m.id for m in blocked)
                reason = f"duplicate_blocked: matches {listed}"
                out.append((RowResult(number, "rejected", reason=reason), None))
            elif matches:
                best = matches[0]
                status = "flagged" if len({m.id for m in matches}) > 1 else "linked"
                reason = (
                    "also matches " + ", ".join(m.id for m in matches[1:4])
                    if status == "flagged"
                    else ""
                )
                out.append(
                    (RowResult(number, status, best.object, best.id, best.score, reason), None)
                )
            else:
                contact = Contact(
                    **{k: v for k, v in data.items() if k in PERSON_FIELDS},
                    phone_e164=record_phone_e164(data.get("phone"), data.get("country")),
                )
                own = (
                    record_keys(self.rules["contact"], engine.record_values(contact))
                    if self.rekey_after_save
                    else keyed[number][1]
                )
                for k in own:
                    new_keys.setdefault(k, []).append(contact)
                self.created_keys[contact.pk] = own
                out.append((RowResult(number, "created", "contact", contact.pk), contact))
        return out


def _write_chunk(results: list[tuple[RowResult, Contact | None]], matcher: ChunkMatcher) -> None:
    new = [c for _, c in results if c is not None]
    if not new:
        return
    insert_objects(new)
    if matcher.rekey_after_save:
        rules = matcher.rules["contact"]
        keys = {c.pk: record_keys(rules, engine.record_values(c)) for c in new}
    else:
        keys = {c.pk: matcher.created_keys[c.pk] for c in new}
    engine.store_keys("contact", keys)
    now = timezone.now()
    insert_objects(
        [
            TimelineEntry(
                contact=c,
                kind="contact_created",
                object_type="contact",
                object_id=c.pk,
                summary="Contact created (CSV import)",
                data={},
                occurred_at=now,
            )
            for c in new
        ]
    )


@dataclass
class _Prepared:
    size: int  # rows in the chunk
    rejected: list[tuple[RowResult, Contact | None]]
    valid: list[tuple[int, dict[str, Any]]]
    keys: RowKeys
    notes: dict[int, str]  # row number -> a note for its results line


_REENCODED = "some bytes were not UTF-8 and were read as Windows-1252"


def _prepare(
    chunk: list[tuple[int, Raw]],
    mapping: dict[str, str],
    matcher: ChunkMatcher,
    dialect: csv_dialect.Dialect,
) -> _Prepared:
    """A chunk's rows cleaned (or rejected, with the reason) and keyed."""
    rejected: list[tuple[RowResult, Contact | None]] = []
    valid: list[tuple[int, dict[str, Any]]] = []
    notes: dict[int, str] = {}
    for number, raw in chunk:
        if isinstance(raw, str):
            rejected.append((RowResult(number, "rejected", reason=raw), None))
            continue
        if None in raw:  # more cells than headers
            rejected.append((RowResult(number, "rejected", reason="more cells than headers"), None))
            continue
        # Only the cells imported: one the import ignores cannot spoil the row.
        if csv_dialect.undecodable(raw.get(header) for header in mapping):
            if not dialect.lenient:
                reason = f"not valid {dialect.encoding_label} text"
                rejected.append((RowResult(number, "rejected", reason=reason), None))
                continue
            raw = {k: csv_dialect.unmarked(v) if v else v for k, v in raw.items()}
            notes[number] = _REENCODED
        try:
            valid.append((number, clean_row(raw, mapping)))
        except ValueError as exc:
            rejected.append((RowResult(number, "rejected", reason=str(exc)), None))
    return _Prepared(len(chunk), rejected, valid, matcher.keys(valid), notes)


def _add_notes(results: list[tuple[RowResult, Contact | None]], notes: dict[int, str]) -> int:
    """Add the rows' notes to their reasons; the number of rows noted."""
    for result, _ in results:
        if note := notes.get(result.row):
            result.reason = f"{result.reason}; {note}" if result.reason else note
    return len(notes)


def _read_header(
    reader: csv.DictReader[str], dialect: csv_dialect.Dialect
) -> tuple[dict[str, str], list[str]]:
    """The header's mapping to fields and its ignored columns; ValueError if it has no
    last-name column."""
    reader.fieldnames = headers = csv_dialect.header_names(reader.fieldnames or [], dialect)
    mapping, ignored = map_headers(headers)
    if "last_name" not in mapping.values():
        raise ValueError(
            "the file has no last-name column (e.g. 'Last Name' or 'surname'); it was read "
            f"with {dialect.describe()}: if that is wrong, use --delimiter or --encoding"
        )
    return mapping, ignored


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
        mapping, summary.ignored_columns = _read_header(reader, dialect)
        writer = csv.writer(dst)
        writer.writerow(["row", "status", "object", "id", "score", "reason"])
        matcher = ChunkMatcher()
        chunks = _chunks(_rows(reader), chunk_rows)

        def prepare() -> _Prepared | None:
            chunk = next(chunks, None)
            return None if chunk is None else _prepare(chunk, mapping, matcher, dialect)

        # While a chunk waits on the database, the next one is read, cleaned and keyed in
        # a helper thread (pure computation, it never touches the database; both threads
        # share the normalisation caches).
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import") as helper:
            upcoming = helper.submit(prepare)
            while (prepared := upcoming.result()) is not None:
                upcoming = helper.submit(prepare)
                next_chunk()
                results, valid, keys = prepared.rejected, prepared.valid, prepared.keys
                with transaction.atomic():
                    # The same locks an API create takes: a person created through the
                    # API while this chunk runs is either seen here or sees this chunk's.
                    advisory_lock(
                        lock_names(
                            k
                            for lookup, own in keys.values()
                            for ks in (*lookup.values(), own)
                            for k in ks
                        )
                    )
                    matched = matcher.process(valid, keys)
                    _write_chunk(matched, matcher)
                results += matched
                summary.reencoded_rows += _add_notes(results, prepared.notes)
                for result, _ in sorted(results, key=lambda r: r[0].row):
                    summary.add(result)
                    writer.writerow(
                        [result.row, result.status, result.object, result.id,
                         "" if result.score is None else result.score, result.reason]
                    )  # fmt: skip
                if progress:
                    progress(prepared.size)
        if dry_run:
            transaction.set_rollback(True)
    return summary
