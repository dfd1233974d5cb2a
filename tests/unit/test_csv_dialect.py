"""Detecting how a CSV file to import is written (tessera.crm.csv_dialect)."""

from __future__ import annotations

import codecs

import pytest

from tessera.crm import csv_dialect
from tessera.crm.importer import header_score


def delimiter_of(text: str) -> str:
    return csv_dialect.detect_delimiter(text, header_score)


def test_a_header_without_a_delimiter_is_one_column_read_as_comma() -> None:
    assert delimiter_of("Nachname\r\nMüller;Hans\r\n") == ","


def test_delimiters_inside_quoted_header_names_do_not_count() -> None:
    assert delimiter_of('"Name; Vorname; Titel",Nachname\r\n"A; B; C",D\r\n') == ","


def test_the_known_header_names_outweigh_the_sniffer() -> None:
    # Every line has one comma and two semicolons: csv.Sniffer prefers the comma.
    text = (
        "Nachname;Vorname;Betrag (EUR, brutto)\r\n"
        "Müller;Hans;1,50\r\nSchmidt;Eva;2,75\r\nLang;Otto;10,00\r\n"
    )
    assert delimiter_of(text) == ";"


def test_a_tab_separated_header_is_detected() -> None:
    assert delimiter_of("Nachname\tVorname\tFirma, Abteilung\r\n") == "\t"


def test_a_quoted_header_name_spanning_lines_is_one_header() -> None:
    assert delimiter_of('"Nach\r\nname";Vorname\r\nMüller;Hans\r\n') == ";"


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (codecs.BOM_UTF8 + b"Nachname\r\n", ("utf-8-sig", False)),
        ("Nachname\r\n".encode("utf-16"), ("utf-16", False)),
        (b"Last Name\r\nLovelace\r\n", ("utf-8", True)),
        ("Nachname\r\nMüller\r\n".encode(), ("utf-8", True)),
        ("Nachname\r\nMüller\r\n".encode("cp1252"), ("cp1252", False)),
    ],
)
def test_the_encoding_is_detected(prefix: bytes, expected: tuple[str, bool]) -> None:
    assert csv_dialect.detect_encoding(prefix, complete=True) == expected


def test_a_prefix_cut_inside_a_utf8_character_is_still_utf8() -> None:
    prefix = "Nachname\r\nMüller".encode()[:12]  # ends after the first byte of "ü"
    assert csv_dialect.detect_encoding(prefix, complete=False) == ("utf-8", True)


@pytest.mark.parametrize(("given", "delimiter"), [("tab", "\t"), ("\\t", "\t"), ("\t", "\t")])
def test_tab_may_be_given_as_a_word_or_an_escape(given: str, delimiter: str) -> None:
    assert csv_dialect.parse_delimiter(given) == delimiter


def test_an_encoding_that_is_not_text_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown encoding"):
        csv_dialect.check_encoding("rot13")


def test_the_error_handler_marks_what_it_reads_as_windows_1252() -> None:
    text = "Müller".encode("cp1252").decode("utf-8", errors=csv_dialect.ERRORS)
    assert csv_dialect.unmarked(text) == "Müller"
