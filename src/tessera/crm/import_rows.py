"""Reading a CSV of contacts for the importer: which column is which field, each row
cleaned into contact fields (or rejected with the reason), and the rows in chunks."""

from __future__ import annotations

import csv
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from tessera.crm import csv_dialect
from tessera.crm.models import Contact

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


# row number -> (its lookup keys per target, its own keys as a contact)
RowKeys = dict[int, tuple[dict[str, set[str]], set[str]]]
# A row's result, with the contact it creates (None when it creates none).
Outcome = tuple[RowResult, Contact | None]


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


def read_rows(reader: csv.DictReader[str]) -> Iterator[Raw]:
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


def chunks(rows: Iterator[Raw], size: int) -> Iterator[list[tuple[int, Raw]]]:
    chunk: list[tuple[int, Raw]] = []
    for number, row in enumerate(rows, start=2):  # row 1 is the header
        chunk.append((number, row))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@dataclass
class Prepared:
    size: int  # rows in the chunk
    rejected: list[Outcome]
    valid: list[tuple[int, dict[str, Any]]]
    keys: RowKeys
    notes: dict[int, str]  # row number -> a note for its results line


_REENCODED = "some bytes were not UTF-8 and were read as Windows-1252"


def prepare_chunk(
    chunk: list[tuple[int, Raw]],
    mapping: dict[str, str],
    row_keys: Callable[[list[tuple[int, dict[str, Any]]]], RowKeys],
    dialect: csv_dialect.Dialect,
) -> Prepared:
    """A chunk's rows cleaned (or rejected, with the reason) and keyed."""
    rejected: list[Outcome] = []
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
    return Prepared(len(chunk), rejected, valid, row_keys(valid), notes)


def add_notes(results: list[Outcome], notes: dict[int, str]) -> int:
    """Add the rows' notes to their reasons; the number of rows noted."""
    for result, _ in results:
        if note := notes.get(result.row):
            result.reason = f"{result.reason}; {note}" if result.reason else note
    return len(notes)


def read_header(
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
