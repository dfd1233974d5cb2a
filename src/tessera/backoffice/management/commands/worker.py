from __future__ import annotations

import threading
from argparse import ArgumentParser
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand

from tessera.core.scheduler import run_in_background


class Command(BaseCommand):
    help = "Run the background worker (emails and other jobs) until stopped."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--queues", default="*", help="comma-separated queues, * for all")
        parser.add_argument("--interval", type=float, default=1.0, help="idle poll seconds")
        parser.add_argument("--batch", action="store_true", help="run what is due, then exit")

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        if not options["batch"]:
            run_in_background(stop)  # periodic jobs: point expiry, clean-up
        try:
            self._work(options)
        finally:
            stop.set()

    def _work(self, options: dict[str, Any]) -> None:
        call_command(
            "db_worker",
            queue_name=options["queues"],
            interval=options["interval"],
            batch=options["batch"],
            reload=False,
            verbosity=options["verbosity"],
        )
