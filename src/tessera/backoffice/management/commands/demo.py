from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from argparse import ArgumentParser
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from tessera.backoffice.demo import (
    DEMO_ADMIN_PASSWORD,
    DEMO_ADMIN_USER,
    demo_data_loaded,
    fresh_demo_key,
    load_demo_data,
)
from tessera.backoffice.management.commands.serve import gunicorn_argv
from tessera.loyalty.models import Member

DEMO_WEBHOOK_SECRET = "whsec_tessera_demo"  # noqa: S105 - the local emulator's, not a secret


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _register_webhook(port: int, url: str) -> None:
    """Tell localstripe where to deliver events (its /_config/webhooks endpoint)."""
    data = urllib.parse.urlencode({"url": url, "secret": DEMO_WEBHOOK_SECRET}).encode()
    for _ in range(50):
        try:
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/_config/webhooks/tessera", data=data, method="POST"
            )
            with urllib.request.urlopen(request, timeout=2):  # noqa: S310
                return
        except OSError:
            time.sleep(0.2)


class Command(BaseCommand):
    help = "Run the demo: SQLite, demo data, web server and worker. Ctrl-C stops it all."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--host", default="127.0.0.1")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
            self.stderr.write("Note: DATABASE_URL is set; the demo uses that database.")
        call_command("migrate", interactive=False, verbosity=0)
        if not demo_data_loaded():
            load_demo_data()
            self.stdout.write("Loaded the demo data.")
        api_key = fresh_demo_key()

        base = f"http://{options['host']}:{options['port']}"
        stripe_port = _free_port()
        env = {
            **os.environ,
            "TESSERA_DEMO": "1",
            # The demo takes card payments from a local Stripe emulator, never real money.
            "STRIPE_API_BASE": f"http://127.0.0.1:{stripe_port}",
            "STRIPE_SECRET_KEY": "sk_test_tessera_demo",
            "STRIPE_PUBLISHABLE_KEY": "pk_test_tessera_demo",
            "STRIPE_WEBHOOK_SECRET": DEMO_WEBHOOK_SECRET,
        }
        children = [
            subprocess.Popen(
                [sys.executable, "-m", "tessera.billing.localstripe_server", "--port",
                 str(stripe_port), "--state", str(Path.cwd() / "tessera-localstripe.pickle")],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ),
            subprocess.Popen(gunicorn_argv(options["host"], options["port"], 2, 4), env=env),
            subprocess.Popen([sys.executable, "-m", "tessera.cli", "worker"], env=env),
        ]  # fmt: skip
        _register_webhook(stripe_port, f"{base}/api/v1/webhooks/stripe")
        self.stdout.write(
            "\n".join(
                [
                    "",
                    f"Tessera demo is running at {base}/",
                    f"  API docs:  {base}/api/v1/docs",
                    f"  OpenAPI:   {base}/api/v1/openapi.json",
                    f"  Admin:     {base}/admin/"
                    f"  (login {DEMO_ADMIN_USER} / {DEMO_ADMIN_PASSWORD})",
                    f"  API key:   {api_key}",
                    f"  Stripe:    local emulator at http://127.0.0.1:{stripe_port} "
                    "(test card 4242 4242 4242 4242)",
                    f"  Database:  {settings.DATABASES['default']['NAME']}",
                    "",
                    "Try:",
                    f"  curl -s -H 'Authorization: Bearer {api_key}' {base}/api/v1/contacts",
                    *(
                        [
                            f"  curl -s -H 'Authorization: Bearer {api_key}' "
                            f"{base}/api/v1/members/{member.pk}/wallet/transactions"
                        ]
                        if (member := Member.objects.order_by("created_at").first())
                        else []
                    ),
                    "",
                    "Press Ctrl-C to stop.",
                ]
            )
        )
        self._supervise(children)

    def _supervise(self, children: list[subprocess.Popen[bytes]]) -> None:
        stopping = False

        def stop(signum: int, _frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping:
                if any(child.poll() is not None for child in children):
                    break
                time.sleep(0.2)
        finally:
            for child in children:
                if child.poll() is None:
                    child.terminate()
            deadline = time.monotonic() + 15
            for child in children:
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.kill()
        failed = [str(c.args) for c in children if c.returncode not in (0, -15, -2, None)]
        if failed and not stopping:
            raise CommandError(f"a demo process exited unexpectedly: {failed}")
        self.stdout.write("Demo stopped.")
