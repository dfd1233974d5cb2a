"""A Stripe that stops answering costs a request seconds, not minutes: each attempt waits
STRIPE_TIMEOUT_SECONDS (the SDK's own default is 80 s, three attempts), then the call is
reported unavailable and the payment is left for reconciliation."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tessera.billing.gateways.base import GatewayUnavailable
from tessera.billing.gateways.stripe import StripeGateway


@pytest.fixture
def silent_stripe() -> Iterator[str]:
    """An address that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    server.close()


def ask(base: str) -> float:
    started = time.monotonic()
    with pytest.raises(GatewayUnavailable):
        StripeGateway(api_key="sk_test_silent", api_base=base).ensure_customer(
            email="ada@example.com", name="Ada", idempotency_key="cus-timeout"
        )
    return time.monotonic() - started


def test_a_silent_stripe_is_given_up_on_after_the_timeout(
    settings: Any, silent_stripe: str
) -> None:
    settings.STRIPE_TIMEOUT_SECONDS = 0.5
    # Three attempts of 0.5 s and the SDK's short back-off between them; far below the
    # four minutes the SDK's defaults would hold the request.
    assert ask(silent_stripe) < 10
