from __future__ import annotations

from argparse import ArgumentParser, ArgumentTypeError
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, cast

from django.core.management.base import BaseCommand, CommandError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from tessera.crm import csv_dialect
from tessera.crm.importer import import_contacts


def count_rows(path: Path) -> int:
    lines = 0
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            lines += block.count(b"\n")
    return max(lines - 1, 0)  # less the header; a good total for the progress bar


def _checked(check: Callable[[str], str]) -> Callable[[str], str]:
    """An argparse type: ``check``'s ValueError becomes a usage error naming the option."""

    def parse(value: str) -> str:
        try:
            return check(value)
        except ValueError as exc:
            raise ArgumentTypeError(str(exc)) from exc

    return parse


class Command(BaseCommand):
    help = "Import records from CSV with duplicate matching: `tessera import contacts FILE.csv`."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("object", choices=["contacts"])
        parser.add_argument("file", type=Path)
        parser.add_argument(
            "--dry-run", action="store_true", help="match and report, write nothing"
        )
        parser.add_argument("--results", type=Path, help="where to write per-row results")
        parser.add_argument(
            "--delimiter",
            type=_checked(csv_dialect.parse_delimiter),
            help="the cell delimiter: , ; tab (or \\t) | (default: detected)",
        )
        parser.add_argument(
            "--encoding",
            type=_checked(csv_dialect.check_encoding),
            help="the file's encoding, e.g. utf-8, cp1252, utf-16 (default: detected)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        if not path.is_file():
            raise CommandError(f"no such file: {path}")
        # OutputWrapper is file-like; writing through it keeps call_command(stdout=...) working.
        console = Console(file=cast(IO[str], self.stdout))
        results = options["results"] or path.with_name(path.stem + ".results.csv")
        with Progress(
            TextColumn("[bold]Importing[/bold] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        ) as bar:
            task = bar.add_task(path.name, total=count_rows(path))
            try:
                summary = import_contacts(
                    path,
                    dry_run=options["dry_run"],
                    results_path=results,
                    progress=lambda n: bar.advance(task, n),
                    delimiter=options["delimiter"],
                    encoding=options["encoding"],
                )
            except (ValueError, UnicodeError) as exc:
                raise CommandError(str(exc)) from exc
        table = Table(
            title="Dry run: nothing was written" if options["dry_run"] else "Import summary"
        )
        for column in ("created", "linked", "flagged", "rejected", "total"):
            table.add_column(column, justify="right")
        table.add_row(
            *(
                str(getattr(summary, c))
                for c in ("created", "linked", "flagged", "rejected", "total")
            )
        )
        console.print(table)
        console.print(f"Read with {summary.dialect.describe()}")
        if summary.reencoded_rows:
            console.print(
                f"{summary.reencoded_rows} rows had bytes that are not UTF-8 and were read as "
                "Windows-1252: their results say so"
            )
        if summary.ignored_columns:
            console.print(f"Ignored columns: {', '.join(summary.ignored_columns)}")
        console.print(f"Per-row results: {results}")
