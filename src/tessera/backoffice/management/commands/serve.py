from __future__ import annotations

import os
import sys
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

# gunicorn's default access line, less the query string and the Referer: both carry
# sign-in and waitlist tokens (/signin/link?token=..., and the page that posts it), which
# must never reach a log. The path without its query (%(U)s) is enough to follow traffic.
# The request id (the response's X-Request-ID) ends the line, so an access line can be found
# beside the application's own lines for the same request.
ACCESS_LOG_FORMAT = (
    '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(a)s" %({x-request-id}o)s'
)


def gunicorn_argv(host: str, port: int, workers: int, threads: int) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn", "tessera.wsgi:application",
        "--bind", f"{host}:{port}",
        "--workers", str(workers),
        "--threads", str(threads),
        "--access-logfile", "-",
        "--access-logformat", ACCESS_LOG_FORMAT,
        "--graceful-timeout", "10",
    ]  # fmt: skip


class Command(BaseCommand):
    help = "Serve the web application and API with gunicorn."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--host", default=os.environ.get("TESSERA_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) * 2 + 1)
        parser.add_argument("--threads", type=int, default=4)

    def handle(self, *args: Any, **options: Any) -> None:
        argv = gunicorn_argv(
            options["host"], options["port"], options["workers"], options["threads"]
        )
        os.execv(sys.executable, argv)  # noqa: S606 - replace this process with gunicorn
