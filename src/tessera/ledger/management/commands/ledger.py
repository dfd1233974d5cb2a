from __future__ import annotations

import sys
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from tessera.ledger.services import verify


class Command(BaseCommand):
    help = "Ledger tools: `tessera ledger verify` recomputes every balance from postings."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("action", choices=["verify"])

    def handle(self, *args: Any, **options: Any) -> None:
        report = verify()
        for code, cached, expected in report.balance_mismatches:
            self.stdout.write(f"MISMATCH {code}: cached balance {cached}, postings sum {expected}")
        for entry, asset, total in report.unbalanced_entries:
            self.stdout.write(f"UNBALANCED entry {entry}: {asset} postings sum to {total}")
        if report.ok:
            self.stdout.write(f"OK: {report.accounts} accounts and {report.entries} entries agree.")
            return
        self.stdout.write(
            f"FAILED: {len(report.balance_mismatches)} balance(s) and "
            f"{len(report.unbalanced_entries)} entr(y/ies) disagree."
        )
        sys.exit(1)
