from __future__ import annotations

import csv
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tessera.crm import csv_dialect, services
from tessera.crm.importer import import_contacts
from tessera.crm.inputs import ContactInput
from tessera.crm.matching import engine, rules
from tessera.crm.matching.inputs import RuleChanges
from tessera.crm.matching.models import MatchingRule, MatchKey
from tessera.crm.matching.services import update_rule
from tessera.crm.models import Contact, TimelineEntry

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fresh_rules")]

HEADER = "First Name,Surname,E-mail Address,Phone,Company,Favourite Colour,Date of Birth\n"
ROWS = [
    "Ada,Lovelace,ada@example.com,,,,1815-12-10",  # 2 existing contact: linked
    "Grace,Hopper,grace@navy.mil,+1 202 555 0101,US Navy,blue,",  # 3 new: created
    "G.,Hopper,grace@navy.mil,,,,",  # 4 same as row 3, same file: linked to it
    "Alan,,alan@example.org,,,,",  # 5 no last name: rejected
    "Bad,Email,not-an-email,,,,",  # 6 rejected
    "Bad,Date,bd@example.com,,,,10/12/1815",  # 7 rejected
    "Too,Many,tm@example.com,,,,,extra",  # 8 rejected
    "Katherine,Johnson,kj@nasa.gov,,NASA,,1918-08-26",  # 9 created
    "Ada,Lovelace,ada@example.com,,,,",  # 10 matches two existing (flagged)
]


def write(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "people.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def run(path: Path, *args: str) -> str:
    out = StringIO()
    call_command("import", "contacts", str(path), *args, stdout=out)
    return out.getvalue()


def results(path: Path) -> dict[int, dict[str, str]]:
    with path.with_name("people.results.csv").open() as f:
        return {int(r["row"]): r for r in csv.DictReader(f)}


@dataclass
class Imported:
    ada: Contact  # there before the import
    output: str
    results: dict[int, dict[str, str]]


@pytest.fixture
def imported(tmp_path: Path) -> Imported:
    """Ada exists; then every row but the last (the ambiguous one) is imported."""
    ada = services.create_contact(
        ContactInput(first_name="Ada", last_name="Lovelace", email="ada@example.com")
    ).record
    path = write(tmp_path, ROWS[:-1])
    output = run(path)
    return Imported(ada, output, results(path))


def test_import_reports_what_it_did_with_each_row(imported: Imported) -> None:
    assert {n: r["status"] for n, r in imported.results.items()} == {
        2: "linked", 3: "created", 4: "linked", 5: "rejected", 6: "rejected",
        7: "rejected", 8: "rejected", 9: "created",
    }  # fmt: skip


def test_import_links_a_row_to_the_existing_contact(imported: Imported) -> None:
    assert imported.results[2]["id"] == imported.ada.pk


def test_import_links_a_row_to_the_one_created_earlier_in_the_file(imported: Imported) -> None:
    assert imported.results[4]["id"] == imported.results[3]["id"]


@pytest.mark.parametrize(
    ("row", "reason"), [(5, "last name"), (6, "email"), (7, "birthdate"), (8, "more cells")]
)
def test_import_says_why_it_rejected_a_row(imported: Imported, row: int, reason: str) -> None:
    assert reason in imported.results[row]["reason"]


def test_import_creates_contacts_from_the_mapped_columns(imported: Imported) -> None:
    grace = Contact.objects.get(pk=imported.results[3]["id"])
    assert (grace.first_name, grace.email, grace.company) == ("Grace", "grace@navy.mil", "US Navy")
    katherine = Contact.objects.get(pk=imported.results[9]["id"])
    assert katherine.birthdate.isoformat() == "1918-08-26"


def test_import_creates_no_contact_for_linked_or_rejected_rows(imported: Imported) -> None:
    assert Contact.objects.count() == 3  # Ada, Grace and Katherine


def test_an_imported_contact_can_be_matched(imported: Imported) -> None:
    assert MatchKey.objects.filter(object_id=imported.results[3]["id"]).exists()


def test_an_imported_contact_has_its_creation_on_its_timeline(imported: Imported) -> None:
    grace = Contact.objects.get(pk=imported.results[3]["id"])
    assert TimelineEntry.objects.filter(contact=grace, kind="contact_created").count() == 1


def test_import_prints_a_summary_naming_the_ignored_columns(imported: Imported) -> None:
    assert "Favourite Colour" in imported.output
    assert "Import summary" in imported.output


def test_a_row_matching_several_records_is_flagged(tmp_path: Path) -> None:
    a = services.create_contact(
        ContactInput(first_name="Ada", last_name="Lovelace", email="ada@example.com")
    ).record
    b = services.create_contact(
        ContactInput(first_name="A.", last_name="Lovelace", email="ada@example.com")
    ).record
    path = write(tmp_path, [ROWS[-1]])
    run(path)
    row = results(path)[2]
    assert row["status"] == "flagged"
    assert {row["id"], row["reason"].split()[-1]} == {a.pk, b.pk}


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path, ROWS)
    output = run(path, "--dry-run")
    assert Contact.objects.count() == 0
    assert MatchKey.objects.count() == 0
    assert TimelineEntry.objects.count() == 0
    assert "Dry run" in output
    assert results(path)[3]["status"] == "created"


def test_block_rule_rejects_rows(tmp_path: Path) -> None:
    services.create_contact(
        ContactInput(first_name="Ada", last_name="Lovelace", email="ada@example.com")
    )
    update_rule(
        MatchingRule.objects.get(object="contact", is_standard=True).pk, RuleChanges(action="block")
    )
    rules.invalidate()
    path = write(tmp_path, [ROWS[0]])
    run(path)
    assert results(path)[2]["status"] == "rejected"
    assert "duplicate_blocked" in results(path)[2]["reason"]
    assert Contact.objects.count() == 1


def results_of(path: Path) -> list[dict[str, str]]:
    with path.with_name(path.stem + ".results.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_a_cell_the_csv_reader_refuses_is_one_rejected_row(tmp_path: Path) -> None:
    huge = "x" * (csv.field_size_limit() + 10)
    path = write(tmp_path, [
        "Marie,Curie,marie@example.org,,,,",
        f"Huge,Cell,huge@example.org,,{huge},,",
        "Lise,Meitner,lise@example.org,,,,",
    ])  # fmt: skip
    summary = import_contacts(path)
    assert (summary.created, summary.rejected) == (2, 1)
    rows = results_of(path)
    assert [r["status"] for r in rows] == ["created", "rejected", "created"]
    assert "unreadable CSV at line 3" in rows[1]["reason"]
    assert set(Contact.objects.values_list("last_name", flat=True)) >= {"Curie", "Meitner"}
    assert not Contact.objects.filter(last_name="Cell").exists()


def test_an_unclosed_quote_is_reported_where_it_starts(tmp_path: Path) -> None:
    path = write(tmp_path, [
        "Marie,Curie,marie@example.org,,,,",
        'Open,Quote,oq@example.org,,"Acme,,',
        "Lise,Meitner,lise@example.org,,,,",
        "Otto,Hahn,otto@example.org,,,,",
    ])  # fmt: skip
    summary = import_contacts(path)
    assert (summary.created, summary.rejected) == (1, 1)
    rows = results_of(path)
    assert rows[1]["status"] == "rejected"
    assert "runs from line 3 to 5" in rows[1]["reason"]
    assert "quote left open" in rows[1]["reason"]
    assert not Contact.objects.filter(last_name__in=["Quote", "Meitner", "Hahn"]).exists()


def test_file_without_a_last_name_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("name,email\nAda,ada@example.com\n")
    with pytest.raises(CommandError, match="last-name column"):
        run(path)
    assert Contact.objects.count() == 0


def test_large_file_streams_in_chunks(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    with path.open("w") as f:
        f.write("first_name,last_name,email\n")
        for i in range(1200):
            f.write(f"P{i},Person{i},p{i}@example.com\n")
    from tessera.crm.importer import import_contacts

    summary = import_contacts(path, chunk_rows=250)
    assert (summary.created, summary.total) == (1200, 1200)
    assert Contact.objects.count() == 1200


def test_imported_contacts_are_whole_records(tmp_path: Path) -> None:
    """Rows written by COPY / executemany read back like rows saved through the ORM:
    timestamps set, dates and JSON typed, match keys the same as a normal save's."""
    path = write(tmp_path, [ROWS[1], ROWS[7]])
    run(path)
    katherine = Contact.objects.get(email="kj@nasa.gov")
    assert katherine.created_at is not None
    assert katherine.updated_at is not None
    assert str(katherine.birthdate) == "1918-08-26"
    entry = TimelineEntry.objects.get(contact=katherine, kind="contact_created")
    assert entry.data == {}
    assert entry.occurred_at is not None
    stored = set(MatchKey.objects.filter(object_id=katherine.pk).values_list("key", flat=True))
    assert stored
    assert stored == engine.keys_for("contact", katherine)


def test_bulk_insert_refuses_rows_without_a_primary_key() -> None:
    from tessera.core.bulk import insert_objects
    from tessera.crm.matching.models import NameVariant

    with pytest.raises(ValueError, match="primary keys"):
        insert_objects([NameVariant(name="Bob", variant="Robert")])
    assert not NameVariant.objects.exists()


# Files as spreadsheet programs in other locales write them: semicolons or tabs, CRLF,
# a BOM, Windows-1252 or UTF-16.
def write_as(tmp_path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path = tmp_path / "people.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


GERMAN = [
    "Vorname;Nachname;E-Mail;Firma;Straße;PLZ;Ort",
    "Hans;Müller;hans@example.de;Müller GmbH;Hauptstraße 1;10115;Berlin",
]


def test_a_semicolon_file_with_german_headers_is_imported(tmp_path: Path) -> None:
    run(write_as(tmp_path, GERMAN))
    hans = Contact.objects.get(email="hans@example.de")
    assert hans.last_name == "Müller"
    assert hans.first_name == "Hans"
    assert hans.street == "Hauptstraße 1"
    assert hans.postal_code == "10115"


def test_a_semicolon_file_with_english_headers_is_imported(tmp_path: Path) -> None:
    path = write_as(tmp_path, [HEADER.strip().replace(",", ";"), ROWS[1].replace(",", ";")])
    run(path)
    assert Contact.objects.get(email="grace@navy.mil").company == "US Navy"


def test_french_and_spanish_headers_are_mapped(tmp_path: Path) -> None:
    path = write_as(tmp_path, [
        "Prénom;Nom;Courriel;Société;Code postal;Ville;Pays;Apellido(s)",
        "Marie;Curie;marie@example.fr;Institut du Radium;75005;Paris;FR;",
    ])  # fmt: skip
    summary = import_contacts(path)
    marie = Contact.objects.get(email="marie@example.fr")
    assert marie.last_name == "Curie"
    assert marie.city == "Paris"
    # Spanish for the last name, but "Nom" came first: the column is ignored, not merged.
    assert summary.ignored_columns == ["Apellido(s)"]


def test_a_tab_separated_file_is_imported(tmp_path: Path) -> None:
    path = write_as(tmp_path, ["Nachname\tVorname\tE-Mail", "Noether\tEmmy\temmy@example.de"])
    run(path)
    assert Contact.objects.get(email="emmy@example.de").last_name == "Noether"


def test_an_excel_unicode_text_file_is_imported(tmp_path: Path) -> None:
    """Excel's "Unicode text": tab-separated UTF-16 with a BOM."""
    path = write_as(tmp_path, ["Nachname\tVorname", "Łukasiewicz\tJan"], encoding="utf-16")
    run(path)
    assert Contact.objects.filter(last_name="Łukasiewicz").exists()


def test_a_utf8_file_with_a_bom_maps_its_first_header(tmp_path: Path) -> None:
    path = write_as(tmp_path, ["Nachname;Vorname", "Meitner;Lise"], encoding="utf-8-sig")
    run(path)
    assert Contact.objects.filter(last_name="Meitner").exists()


def test_the_bom_is_not_part_of_the_first_header(tmp_path: Path) -> None:
    path = write_as(tmp_path, ["Kundennummer;Nachname", "K-17;Meitner"], encoding="utf-8-sig")
    summary = import_contacts(path)
    assert summary.ignored_columns == ["Kundennummer"]


def test_a_windows_1252_file_keeps_its_umlauts(tmp_path: Path) -> None:
    path = write_as(tmp_path, ["First Name,Last Name", "Hans,Müller"], encoding="cp1252")
    run(path)
    assert Contact.objects.filter(last_name="Müller").exists()


def test_quoted_commas_in_a_semicolon_file_stay_in_their_cell(tmp_path: Path) -> None:
    # Every row holds more commas than semicolons, and as many: only the header tells.
    path = write_as(tmp_path, [
        "Vorname;Nachname;Firma;Notiz",
        'Ada;Lovelace;"Babbage, Lovelace & Co.";"1,5 Stellen, Mathematik, Poesie"',
        'Charles;Babbage;"Babbage, Lovelace & Co.";"2,0 Stellen, Maschinen, Zahlen"',
    ])  # fmt: skip
    run(path)
    assert Contact.objects.get(last_name="Lovelace").company == "Babbage, Lovelace & Co."


def test_bytes_not_utf8_after_the_detection_prefix_are_read_as_windows_1252(
    tmp_path: Path,
) -> None:
    """The first 64 KiB are ASCII, so the file looks UTF-8; the umlaut further down is
    Windows-1252 and must be read as such, not lost."""
    path = tmp_path / "people.csv"
    ascii_rows = "".join(f"P{i},Person{i},p{i}@example.com\r\n" for i in range(3000))
    path.write_bytes(
        b"First Name,Last Name,Email\r\n"
        + ascii_rows.encode()
        + "Hans,Müller,hm@example.de\r\n".encode("cp1252")
    )
    assert path.stat().st_size > csv_dialect.PREFIX_BYTES
    summary = import_contacts(path, chunk_rows=1000)
    assert Contact.objects.get(email="hm@example.de").last_name == "Müller"
    assert summary.reencoded_rows == 1
    assert "read as Windows-1252" in results_of(path)[-1]["reason"]


def test_rows_not_valid_in_the_given_encoding_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(
        b"First Name,Last Name\r\n" + "Hans,Müller\r\n".encode("cp1252") + b"Lise,Meitner\r\n"
    )
    run(path, "--encoding", "utf-8")
    rows = results_of(path)
    assert rows[0]["status"] == "rejected"
    assert rows[0]["reason"] == "not valid UTF-8 text"
    assert rows[1]["status"] == "created"  # the import goes on


def test_bytes_not_valid_in_an_ignored_column_do_not_reject_the_row(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(b"Last Name,Notes\r\n" + "Curie,Grüße\r\n".encode("cp1252"))
    run(path, "--encoding", "utf-8")
    assert results_of(path)[0]["status"] == "created"


def test_the_encoding_option_overrides_detection(tmp_path: Path) -> None:
    path = write_as(tmp_path, ["First Name,Last Name", "Hans,Müller"], encoding="utf-8")
    run(path, "--encoding", "cp1252")
    assert Contact.objects.filter(last_name="MÃ¼ller").exists()


def test_the_delimiter_option_overrides_detection(tmp_path: Path) -> None:
    path = write(tmp_path, [ROWS[1]])
    with pytest.raises(CommandError, match="no last-name column"):
        run(path, "--delimiter", ";")


def test_the_delimiter_option_reads_a_pipe_file(tmp_path: Path) -> None:
    path = write_as(tmp_path, ["First Name|Last Name", "Alan|Turing"])
    run(path, "--delimiter", "|")
    assert Contact.objects.filter(last_name="Turing").exists()


def test_an_unknown_delimiter_option_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="must be one of"):
        run(write(tmp_path, [ROWS[1]]), "--delimiter", "x")


def test_the_summary_says_which_delimiter_and_encoding_were_used(tmp_path: Path) -> None:
    summary = import_contacts(write_as(tmp_path, GERMAN, encoding="utf-8-sig"))
    assert summary.dialect.delimiter == ";"
    assert summary.dialect.encoding == "utf-8-sig"


def test_the_output_names_the_delimiter_and_encoding_used(tmp_path: Path) -> None:
    output = run(write_as(tmp_path, GERMAN, encoding="cp1252"))
    assert "delimiter ';' (detected)" in output
    assert "encoding Windows-1252 (detected)" in output
