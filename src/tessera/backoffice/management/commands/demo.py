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
from django.core.management.base import BaseCommand, CommandError

from tessera.backoffice.demo import (
    DEMO_ADMIN_PASSWORD,
    DEMO_ADMIN_USER,
    DEMO_MEMBER_EMAIL,
    demo_api_key,
    demo_state_file,
    prepare_demo_database,
)
from tessera.backoffice.demo_state import (
    DEMO_STRIPE_SECRET_KEY,
    DEMO_WEBHOOK_SECRET,
    STATE_STRIPE_API_BASE,
    demo_environment,
    update_state,
)
from tessera.backoffice.management.commands.serve import gunicorn_argv
from tessera.backoffice.stripe_testing import DEFAULT_TEST_CARD, CardNotMade, make_test_card
from tessera.loyalty.models import Member


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _register_webhook(stripe_url: str, url: str) -> None:
    """Tell localstripe where to deliver events (its /_config/webhooks endpoint)."""
    data = urllib.parse.urlencode({"url": url, "secret": DEMO_WEBHOOK_SECRET}).encode()
    for _ in range(50):
        try:
            request = urllib.request.Request(  # noqa: S310 - the emulator we started
                f"{stripe_url}/_config/webhooks/tessera", data=data, method="POST"
            )
            with urllib.request.urlopen(request, timeout=2):  # noqa: S310
                return
        except OSError:
            time.sleep(0.2)


def _demo_card(stripe_url: str) -> tuple[str, str]:
    """A ready PaymentMethod id on the emulator, so the API can take a payment without a
    browser; or no id and why not."""
    try:
        card = make_test_card(
            DEFAULT_TEST_CARD, secret_key=DEMO_STRIPE_SECRET_KEY, api_base=stripe_url
        )
    except CardNotMade as exc:
        return "", str(exc)
    return card.payment_method_id, ""


def _card_line(payment_method: str, problem: str) -> str:
    if not payment_method:
        return f"  Card:      none ({problem})"
    return (
        f"  Card:      {payment_method}  (a test Visa on the emulator; for another card: "
        "tessera stripe test-card --number 4000002500003155)"
    )


def _try_lines(base: str, api_key: str, payment_method: str) -> list[str]:
    auth = f"-H 'Authorization: Bearer {api_key}'"
    lines = ["Try:", f"  curl -s {auth} {base}/api/v1/contacts"]
    member = Member.objects.order_by("created_at").first()
    if member is None:
        return lines
    lines.append(f"  curl -s {auth} {base}/api/v1/members/{member.pk}/wallet/transactions")
    if payment_method:
        body = f'{{"amount": 2500, "currency": "USD", "payment_method_id": "{payment_method}"}}'
        lines.append(
            f"  curl -s -X POST {auth} -H 'Content-Type: application/json' "
            f"-H 'Idempotency-Key: topup-{payment_method}' -d '{body}' "
            f"{base}/api/v1/members/{member.pk}/credit-purchases"
        )
    return lines


class Command(BaseCommand):
    help = "Run the demo: SQLite, demo data, web server and worker. Ctrl-C stops it all."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--host", default="127.0.0.1")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
            self.stderr.write("Note: DATABASE_URL is set; the demo uses that database.")
        if prepare_demo_database():
            self.stdout.write("Loaded the demo data.")
        state = demo_state_file()
        api_key, key_note = demo_api_key(state)

        base = f"http://{options['host']}:{options['port']}"
        stripe_url = f"http://127.0.0.1:{_free_port()}"
        # Commands run beside the database later read the emulator's address from here.
        update_state(state, **{STATE_STRIPE_API_BASE: stripe_url})
        os.environ.setdefault("TESSERA_SITE_URL", base)  # links in the demo's emails
        children = self._start(options, stripe_url)
        _register_webhook(stripe_url, f"{base}/api/v1/webhooks/stripe")
        payment_method, card_problem = _demo_card(stripe_url)
        self.stdout.write(
            "\n".join(
                [
                    "",
                    f"Tessera demo is running at {base}/",
                    f"  API docs:  {base}/api/v1/docs",
                    f"  OpenAPI:   {base}/api/v1/openapi.json",
                    f"  Admin:     {base}/admin/"
                    f"  (login {DEMO_ADMIN_USER} / {DEMO_ADMIN_PASSWORD})",
                    f"  Portal:    {base}/signin  (members: {DEMO_MEMBER_EMAIL}; the sign-in"
                    " email and its link are printed below; staff: the admin login)",
                    f"  API key:   {api_key}",
                    *([f"             {key_note}"] if key_note else []),
                    f"  Stripe:    local emulator at {stripe_url} (test card 4242 4242 4242 4242)",
                    _card_line(payment_method, card_problem),
                    f"  Database:  {settings.DATABASES['default']['NAME']}",
                    "",
                    *_try_lines(base, api_key, payment_method),
                    "",
                    "Press Ctrl-C to stop.",
                ]
            )
        )
        self.stdout.flush()  # shown now, also when the output goes to a file or a pipe
        self._supervise(children)

    def _start(self, options: dict[str, Any], stripe_url: str) -> list[subprocess.Popen[bytes]]:
        env = {**os.environ, **demo_environment(stripe_url)}
        port = stripe_url.rsplit(":", 1)[1]
        return [
            subprocess.Popen(
                [sys.executable, "-m", "tessera.billing.localstripe_server", "--port", port,
                 "--state", str(Path.cwd() / "tessera-localstripe.pickle")],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            ),
            subprocess.Popen(gunicorn_argv(options["host"], options["port"], 2, 4), env=env),
            subprocess.Popen([sys.executable, "-m", "tessera.cli", "worker"], env=env),
        ]  # fmt: skip

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
