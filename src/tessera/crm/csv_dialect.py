"""How a CSV file to import is written: its delimiter and its encoding.

Spreadsheet programs write CSV by locale: Excel in German or French writes semicolons
(the comma is the decimal separator there), in Windows-1252 or UTF-8 with a BOM; its
"Unicode text" export is tab-separated UTF-16 with a BOM. Both are detected from a prefix
of the file only (the file may have millions of rows), or given by the user.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

# Detected delimiters. "|" is accepted when given but never guessed: it is rare, and a
# pipe inside a cell would make a comma file look pipe-separated.
CANDIDATES = (",", ";", "\t")
_GIVEN = {",": ",", ";": ";", "tab": "\t", "\\t": "\t", "\t": "\t", "|": "|"}
_DELIMITER_LABELS = {",": "','", ";": "';'", "\t": "tab", "|": "'|'"}
_ENCODING_LABELS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 with BOM",
    "utf-16": "UTF-16",
    "cp1252": "Windows-1252",
    "iso8859-1": "Latin-1",
}

PREFIX_BYTES = 64 * 1024  # read to guess the encoding: enough to meet an accented name
SNIFF_CHARS = 16 * 1024  # given to csv.Sniffer, whose cost grows with the sample

# Bytes the encoding cannot decode come out of the decoder as MARK followed by the bytes
# read as Windows-1252, through the ERRORS handler, so that the row holding them can be
# found (and rejected, or kept) after the CSV reader has split it. MARK is a lone
# surrogate: no successful decoding produces one, so it never stands for real text.
MARK = "\udcfe"
ERRORS = "tessera.csv-undecodable"
# Windows-1252 leaves five bytes undefined; Windows itself maps them to the Latin-1
# control characters, and so does this table.
_CP1252 = [bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in range(256)]


def _mark_undecodable(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return MARK + "".join(_CP1252[b] for b in exc.object[exc.start : exc.end]), exc.end


codecs.register_error(ERRORS, _mark_undecodable)


@dataclass(frozen=True)
class Dialect:
    delimiter: str = ","
    encoding: str = "utf-8"  # a Python codec name: "utf-8-sig", "utf-16", "cp1252", ...
    delimiter_detected: bool = False
    encoding_detected: bool = False
    # Whether bytes the encoding cannot decode are read as Windows-1252 (the row is kept,
    # with a note), rather than rejecting their row. See ``detect_encoding``.
    lenient: bool = False

    @property
    def encoding_label(self) -> str:
        return _ENCODING_LABELS.get(self.encoding, self.encoding)

    @property
    def delimiter_label(self) -> str:
        return _DELIMITER_LABELS.get(self.delimiter, repr(self.delimiter))

    def describe(self) -> str:
        how = {True: " (detected)", False: " (given)"}
        return (
            f"delimiter {self.delimiter_label}{how[self.delimiter_detected]}, "
            f"encoding {self.encoding_label}{how[self.encoding_detected]}"
        )


def parse_delimiter(value: str) -> str:
    """The delimiter a user named: ``,`` ``;`` ``tab`` (or ``\\t``) ``|``."""
    try:
        return _GIVEN[value.lower()]
    except KeyError:
        raise ValueError(f"delimiter {value!r} must be one of , ; tab |") from None


def check_encoding(name: str) -> str:
    """The codec name of an encoding a user named; ValueError if Python has no such text
    encoding."""
    try:
        io.TextIOWrapper(io.BytesIO(), encoding=name)  # as open() will: "rot13" is no text
        return codecs.lookup(name).name
    except LookupError:
        raise ValueError(f"unknown encoding {name!r}") from None


def detect_encoding(prefix: bytes, complete: bool) -> tuple[str, bool]:
    """The encoding of a file starting with ``prefix`` (``complete``: that is the whole
    file), and whether it is lenient.

    A BOM declares its encoding: bytes it cannot decode are errors, whose rows are
    rejected. Without a BOM, a prefix that decodes as UTF-8 is taken as UTF-8, but only
    guessed: often the prefix is plain ASCII and the first accented name further down is
    Windows-1252 (or rows from a Windows-1252 export were appended to a UTF-8 file). Bytes
    that are not UTF-8 are then read as Windows-1252, the likely source, so no row is lost;
    those rows are marked in the results for checking. Anything else is Windows-1252: it
    decodes every Latin-1 text the same way (it differs only in 0x80-0x9F, control
    characters in Latin-1 that no text file holds) and Excel writes it; a row holding one
    of the five bytes it leaves undefined is rejected, as such a file is likely neither."""
    if prefix.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", False
    if prefix.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", False
    try:
        # Not final unless complete: the prefix may end inside a character.
        codecs.getincrementaldecoder("utf-8")().decode(prefix, final=complete)
    except UnicodeDecodeError:
        return "cp1252", False
    return "utf-8", True


def _first_record(text: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    except csv.Error:
        return []


def _sniffed(text: str) -> str | None:
    sample = text[:SNIFF_CHARS]
    if len(text) > SNIFF_CHARS:
        sample = sample[: sample.rfind("\n") + 1] or sample  # whole lines only
    try:
        return csv.Sniffer().sniff(sample, delimiters="".join(CANDIDATES)).delimiter
    except csv.Error:  # "Could not determine delimiter"
        return None


def detect_delimiter(text: str, score: Callable[[list[str]], tuple[int, int]]) -> str:
    """The delimiter of a CSV file starting with ``text``; ``score`` rates header names by
    how well the importer knows them (higher is better).

    A delimiter must split the header: the candidates are those the header line holds
    outside quotes (the CSV reader splits it, so quoted cells holding other delimiters do
    not count); a header with none is one column, read as comma-separated. Among them,
    the one whose columns the importer knows best wins: the header line is where a
    comma file and a semicolon file differ most reliably. csv.Sniffer, which looks at how
    consistently each delimiter splits the first lines, breaks ties (alone it can be
    fooled, by decimal commas in every row of a semicolon file say), then the number of
    columns."""
    split = {d: _first_record(text, d) for d in CANDIDATES}
    options = [d for d in CANDIDATES if len(split[d]) > 1]
    if not options:
        return ","
    sniffed = _sniffed(text) if len(options) > 1 else None
    return max(options, key=lambda d: (score(split[d]), d == sniffed, len(split[d])))


def detect(
    path: Path,
    score: Callable[[list[str]], tuple[int, int]],
    *,
    delimiter: str | None = None,
    encoding: str | None = None,
) -> Dialect:
    """The file's dialect: ``delimiter`` and ``encoding`` as given, else detected from the
    first PREFIX_BYTES of the file."""
    with path.open("rb") as f:
        prefix = f.read(PREFIX_BYTES)
        complete = not f.read(1)
    if encoding is None:
        codec, lenient = detect_encoding(prefix, complete)
    else:
        # Given, the encoding is the user's word: what it cannot decode is an error.
        codec, lenient = check_encoding(encoding), False
    if delimiter is None:
        decoder = codecs.getincrementaldecoder(codec)(errors="replace")
        text = decoder.decode(prefix, final=complete).removeprefix("\ufeff")
        chosen = detect_delimiter(text, score)
    else:
        chosen = parse_delimiter(delimiter)
    return Dialect(chosen, codec, delimiter is None, encoding is None, lenient)


def undecodable(cells: Iterable[str | None]) -> bool:
    """Whether any cell holds bytes the encoding could not decode."""
    return any(MARK in cell for cell in cells if cell)


def unmarked(cell: str) -> str:
    """The cell with its undecodable bytes read as Windows-1252."""
    return cell.replace(MARK, "")


def header_names(headers: Sequence[str], dialect: Dialect) -> list[str]:
    """The header line's names as read: without a BOM that the encoding kept (one given
    as "utf-8", say), with undecodable bytes read as Windows-1252 if the dialect is
    lenient; else these are a ValueError, as a header that is not text means the encoding
    is wrong."""
    names = list(headers)
    if names:
        names[0] = names[0].removeprefix("\ufeff")
    if undecodable(names):
        if not dialect.lenient:
            raise ValueError(
                f"the header line is not valid {dialect.encoding_label} text; "
                "is the encoding right (--encoding)?"
            )
        names = [unmarked(name) for name in names]
    return names
