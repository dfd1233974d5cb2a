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
    RestoreRequest,
    RestoreResult,
    restore,
)
from tessera.backoffice.management.commands.backup import human_size


class Command(BaseCommand):
    help = (
        "Restore a backup written by `tessera backup` into the configured database, which "
        "must be empty unless --force; then verify the ledger and report pending migrations."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("file", type=Path, help="a backup written by `tessera backup`")
        parser.add_argument(
            "--force", action="store_true", help="replace a database that already has tables"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            done = restore(RestoreRequest(path=options["file"], force=options["force"]))
        except (BackupRefused, BackupFailed) as exc:
            self.stderr.write(f"tessera restore: {exc}")
            sys.exit(exc.exit_code)
        replaced = " (its tables replaced, --force)" if done.replaced else ""
        self.stdout.write(
            f"Restored {done.path} ({ENGINE_LABELS[done.engine]}, {human_size(done.size)}) "
            f"into {done.database}{replaced} in {done.seconds:.2f} s."
        )
        if done.left_over:
            self.stdout.write(
                f"Left as they were, not being in the backup: {', '.join(done.left_over)}. "
                "`tessera migrate` may then fail on them: restore into a new database instead."
            )
        if not done.manifest_found:
            self.stdout.write(
                f"No manifest beside it ({done.path.name}.json): the engine was read from the "
                "file itself, and its size and checksum were not checked."
            )
        self._report_migrations(done)
        if not self._report_ledger(done):
            sys.exit(1)

    def _report_migrations(self, done: RestoreResult) -> None:
        if done.unapplied:
            self.stdout.write(
                f"The backup predates this code: {len(done.unapplied)} migration(s) not applied "
                f"({', '.join(done.unapplied)}); run `tessera migrate`."
            )
        else:
            self.stdout.write("Migrations: the database is up to date with this code.")
        if done.unknown:
            self.stdout.write(
                f"The backup records migrations this code does not have "
                f"({', '.join(done.unknown)}): it was made by a newer release; run that one."
            )

    def _report_ledger(self, done: RestoreResult) -> bool:
        report = done.ledger
        if report is None:
            self.stdout.write(
                "Ledger verify: cannot run before the pending migrations are applied; run "
                "`tessera migrate`, then `tessera ledger verify`."
            )
            return True
        for code, cached, expected in report.balance_mismatches:
            self.stdout.write(f"MISMATCH {code}: cached balance {cached}, postings sum {expected}")
        for entry, asset, total in report.unbalanced_entries:
            self.stdout.write(f"UNBALANCED entry {entry}: {asset} postings sum to {total}")
        if report.ok:
            self.stdout.write(
                f"Ledger verify: OK: {report.accounts} accounts and {report.entries} entries agree."
            )
        else:
            self.stdout.write(
                f"Ledger verify: FAILED: {len(report.balance_mismatches)} balance(s) and "
                f"{len(report.unbalanced_entries)} entr(y/ies) disagree."
            )
        return report.ok
