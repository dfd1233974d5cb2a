"""localstripe for tests: a real HTTP Stripe emulator, driven with the real SDK."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import stripe

from tessera.billing.gateways.base import Gateway
from tessera.billing.gateways.stripe import set_gateway
from tessera.billing.models import Transaction
from tessera.ledger.models import LedgerAccount
from tessera.loyalty.credit import purchase_credit
from tessera.loyalty.models import Member
from tests.support.loyalty import member, program
from tests.support.smtp import free_port

SECRET_KEY = "sk_test_tessera"
WEBHOOK_SECRET = "whsec_tessera_test"


@pytest.fixture(scope="session")
def localstripe_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    state: Path = tmp_path_factory.mktemp("localstripe") / "state.pickle"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tessera.billing.localstripe_server",
            "--port",
            str(port),
            "--state",
            str(state),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("localstripe did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def stripe_env(localstripe_url: str, settings: Any) -> Iterator[stripe.StripeClient]:
    settings.STRIPE_API_BASE = localstripe_url
    settings.STRIPE_SECRET_KEY = SECRET_KEY
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    set_gateway(None)
    yield stripe.StripeClient(SECRET_KEY, base_addresses={"api": localstripe_url})
    set_gateway(None)


class InstalledGateway:
    """A gateway ``use_gateway`` put in place; as a context manager, in place only inside
    the ``with`` block."""

    def __enter__(self) -> InstalledGateway:
        return self

    def __exit__(self, *exc: object) -> None:
        set_gateway(None)


UseGateway = Callable[[Gateway | None], InstalledGateway]


@pytest.fixture
def use_gateway() -> Iterator[UseGateway]:
    """Put a gateway (a fault double) in place of the real one: ``use_gateway(Double())``
    for the rest of the test, or ``with use_gateway(Double()):`` for one block. The real
    gateway is back after the test whether it passed or failed, so no double leaks into
    the next one."""

    def install(gateway: Gateway | None) -> InstalledGateway:
        set_gateway(gateway)
        return InstalledGateway()

    yield install
    set_gateway(None)


@pytest.fixture
def good_card(stripe_env: stripe.StripeClient) -> str:
    """A card Stripe accepts, as the PaymentMethod id the browser hands us."""
    return card(stripe_env)


def card(client: stripe.StripeClient, number: str = "4242424242424242", cvc: str = "123") -> str:
    """What Stripe.js does in the browser: turn a card into a PaymentMethod id. Our server
    only ever sees the id."""
    pm = client.v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": cvc},
        }  # type: ignore[typeddict-item]
    )
    return str(pm["id"])


def authenticate(client: stripe.StripeClient, txn: Transaction, secret: str) -> dict[str, Any]:
    """What the buyer's browser does with the client secret (localstripe's own endpoint),
    then the PaymentIntent as Stripe now holds it."""
    client.raw_request(
        "post",
        f"/v1/payment_intents/{txn.stripe_payment_intent_id}/_authenticate",
        client_secret=secret,
        success="true",
    )
    return client.v1.payment_intents.retrieve(str(txn.stripe_payment_intent_id)).to_dict()


def signed(
    event: dict[str, Any], secret: str = WEBHOOK_SECRET, timestamp: int | None = None
) -> tuple[bytes, str]:
    payload = json.dumps(event).encode()
    ts = timestamp or int(time.time())
    sig = hmac.new(secret.encode(), f"{ts}.".encode() + payload, hashlib.sha256).hexdigest()
    return payload, f"t={ts},v1={sig}"


def pi_event(
    event_id: str, kind: str, pi_id: str, amount: int, txn_id: str, **extra: Any
) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "data": {"object": {"id": pi_id, "object": "payment_intent", "amount": amount,
                            "metadata": {"tessera_transaction": txn_id}, **extra}},
    }  # fmt: skip


@dataclass
class FaultProxy:
    url: str
    # (method, path, Idempotency-Key) of every request answered with a 500
    failed: list[tuple[str, str, str | None]] = field(default_factory=list)


@contextmanager
def stripe_500_proxy(upstream: str, fails: Callable[[str, str], bool]) -> Iterator[FaultProxy]:
    """A real HTTP hop in front of localstripe that answers 500 (Stripe's `api_error`)
    to the requests ``fails(method, path)`` picks, before they reach the emulator, and
    forwards the rest untouched. Exercises the SDK's retries and our error mapping."""
    proxy = FaultProxy(url="")

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if fails(self.command, self.path):
                proxy.failed.append((self.command, self.path, self.headers.get("Idempotency-Key")))
                self._send(500, b'{"error": {"type": "api_error", "message": "Internal"}}', {})
                return
            request = urllib.request.Request(  # noqa: S310 - loopback emulator
                upstream + self.path, data=body or None, method=self.command,
                headers={k: v for k, v in self.headers.items() if k.lower() != "host"},
            )  # fmt: skip
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
                    self._send(answer.status, answer.read(), dict(answer.headers))
            except urllib.error.HTTPError as exc:
                self._send(exc.code, exc.read(), dict(exc.headers))

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("Content-Type", headers.get("Content-Type", "application/json"))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()


def clearing(currency: str = "USD") -> int:
    """What our ledger says Stripe holds for us (0 before the first payment)."""
    account = LedgerAccount.objects.filter(code=f"stripe:clearing:{currency}").first()
    return account.balance if account else 0


def paid(client: stripe.StripeClient, amount: int = 1000) -> tuple[Transaction, Member]:
    """A captured wallet top-up of ``amount`` cents (100 points per unit) and its member."""
    m = member(program(points_per_unit=100, low_balance_threshold=0))
    out = purchase_credit(m.pk, amount=amount, currency="USD", payment_method_id=card(client))
    return out.transaction, m
