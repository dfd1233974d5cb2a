from __future__ import annotations

import re
from argparse import ArgumentParser
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from tessera.billing.reconcile import reconcile


def parse_age(text: str) -> timedelta:
    m = re.fullmatch(r"(\d+)([smhd])", text.strip())
    if not m:
        raise CommandError(f"--since takes e.g. 30m, 24h or 7d, not {text!r}")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[m.group(2)]
    return timedelta(**{unit: int(m.group(1))})


class Command(BaseCommand):
    help = (
        "Settle every Stripe-backed transaction and refund left pending by a crash or a lost "
        "webhook."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--since", default="24h", help="how far back to look (default 24h)")
        parser.add_argument("--min-age", default="5m", help="leave younger ones alone (default 5m)")

    def handle(self, *args: Any, **options: Any) -> None:
        report = reconcile(since=parse_age(options["since"]), min_age=parse_age(options["min_age"]))
        for line in report.lines:
            self.stdout.write(line)
        self.stdout.write(
            f"Checked {report.checked}: {report.settled} settled, {report.unchanged} unchanged, "
            f"{report.unreachable} not reachable."
        )
        self.stdout.write(
            f"Refunds checked {report.refunds_checked}: {report.refunds_succeeded} succeeded, "
            f"{report.refunds_failed} failed, {report.refunds_unchanged} unchanged, "
            f"{report.refunds_unreachable} not reachable."
        )
