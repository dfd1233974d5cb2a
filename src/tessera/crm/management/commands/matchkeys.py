"""``tessera matchkeys rebuild``: re-read every record's match keys and E.164 phone.

Rule changes re-key records by themselves. This is for what rules do not see: an upgrade
that changes how values are read, or a new ``TESSERA_DEFAULT_REGION``, after which phones
without a country must be read in the new region.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import IO, Any, cast

from django.core.management.base import BaseCommand
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from tessera.crm.matching.engine import model_for
from tessera.crm.matching.rules import OBJECT_MODELS
from tessera.crm.matching.services import rebuild_match_keys


class Command(BaseCommand):
    help = "Re-key records for matching: `tessera matchkeys rebuild [--object contact]`."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("action", choices=["rebuild"])
        parser.add_argument(
            "--object", choices=sorted(OBJECT_MODELS), action="append",
            help="only these objects (repeatable); default: all",
        )  # fmt: skip

    def handle(self, *args: Any, **options: Any) -> None:
        console = Console(file=cast(IO[str], self.stdout))
        objects = options["object"] or sorted(OBJECT_MODELS)
        with Progress(
            TextColumn("[bold]Re-keying[/bold] {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
        ) as bar:
            for object_type in objects:
                total = model_for(object_type)._default_manager.count()
                task = bar.add_task(f"{object_type}s", total=total)
                rebuild_match_keys(object_type, progress=lambda n, t=task: bar.advance(t, n))
        console.print(f"Re-keyed: {', '.join(objects)}.")
