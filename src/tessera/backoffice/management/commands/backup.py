from __future__ import annotations

import sys
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand

from tessera.backoffice.backup import (
    ENGINE_LABELS,
    BackupFailed,
    BackupRefused,
    BackupRequest,
    back_up,
)


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


class Command(BaseCommand):
    help = (
        "Write a consistent backup of the database to FILE (and its manifest to FILE.json) "
        "while the application runs: SQLite's online backup, or pg_dump --format=custom."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", type=Path, help="the backup to write; never overwritten")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            done = back_up(BackupRequest(path=options["file"]))
        except (BackupRefused, BackupFailed) as exc:
            self.stderr.write(f"tessera backup: {exc}")
            sys.exit(exc.exit_code)
        self.stdout.write(
            f"Backed up {done.database} ({ENGINE_LABELS[done.engine]}) to {done.path} "
            f"({human_size(done.size)}) in {done.seconds:.2f} s; manifest {done.manifest_path}."
        )
