from __future__ import annotations

from argparse import ArgumentParser
from datetime import timedelta
from io import StringIO
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand

from tessera.core.idempotency import prune_idempotency_keys


class Command(BaseCommand):
    help = "Delete expired idempotency keys and old finished job results (run it daily)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--keys-older-than-hours", type=int, default=None)
        parser.add_argument("--jobs-older-than-days", type=int, default=14)

    def handle(self, *args: Any, **options: Any) -> None:
        hours = options["keys_older_than_hours"]
        keys = prune_idempotency_keys(timedelta(hours=hours) if hours is not None else None)
        out = StringIO()
        call_command(
            "prune_db_task_results", min_age_days=options["jobs_older_than_days"], stdout=out
        )
        self.stdout.write(f"Deleted {keys} idempotency key(s). {out.getvalue().strip()}")
