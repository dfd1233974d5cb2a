"""A fault-injecting HTTP reverse proxy in front of localstripe, for the soak.

    proxy = FaultProxy("http://127.0.0.1:12111").start()
    proxy.inject("timeout", seconds=10, fraction=0.5)   # or "error", "drop"; or by HTTP:
    curl -X POST 'http://PROXY/_fault?mode=error&seconds=10&fraction=1'

While a fault is on, each request (``fraction`` of them) is:
- ``timeout``: forwarded, then its answer held ``hold`` seconds (beyond the Stripe SDK's
  80 s read timeout by default) and the connection closed: Stripe did it, we never heard;
- ``error``: answered 500 ``api_error`` without reaching the emulator;
- ``drop``: the connection closed with no answer, half before forwarding and half after.

localstripe ignores ``Idempotency-Key``; Stripe replays the first answer for a key. The
proxy does that for the emulator (it keeps every POST's answer by key), so an SDK retry
after a lost answer gets the same PaymentIntent, as it would from Stripe, and a second
PaymentIntent for one key would be Tessera's doing, not the emulator's.
"""

from __future__ import annotations

import contextlib
import random
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

MODES = ("timeout", "error", "drop")
DEFAULT_HOLD = 30.0  # past STRIPE_TIMEOUT_SECONDS (20 s), so every held call times out
ERROR_BODY = b'{"error": {"type": "api_error", "message": "Injected by the soak proxy"}}'


@dataclass
class Fault:
    mode: str = ""
    fraction: float = 0.0
    until: float = 0.0  # time.monotonic() when it stops

    def active(self) -> bool:
        return bool(self.mode) and time.monotonic() < self.until


@dataclass
class Answer:
    status: int
    body: bytes
    content_type: str


@dataclass
class FaultProxy:
    upstream: str
    hold: float = DEFAULT_HOLD
    seed: int = 7
    url: str = ""
    fault: Fault = field(default_factory=Fault)
    injected: Counter[str] = field(default_factory=Counter)  # mode -> requests hit
    forwarded: int = 0
    replayed: int = 0
    _answers: dict[str, Answer] = field(default_factory=dict)
    _key_locks: dict[str, threading.Lock] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> FaultProxy:
        self._random = random.Random(self.seed)
        self._server = _QuietServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def inject(self, mode: str, *, seconds: float, fraction: float = 1.0) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        with self._lock:
            self.fault = Fault(mode, fraction, time.monotonic() + seconds)

    def clear(self) -> None:
        with self._lock:
            self.fault = Fault()

    def pick(self) -> str:
        """The fault for this request, or '' to pass it through."""
        with self._lock:
            fault = self.fault
            if not fault.active() or self._random.random() >= fault.fraction:
                return ""
            self.injected[fault.mode] += 1
            return fault.mode

    def coin(self) -> bool:
        with self._lock:
            return self._random.random() < 0.5

    def forward(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> Answer:
        """The emulator's answer, or the first answer already given for this POST's key."""
        key = headers.get("Idempotency-Key") if method == "POST" else None
        if not key:
            return self._upstream(method, path, body, headers)
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # a retry waits for the first attempt, as Stripe makes it wait
            if key in self._answers:
                self.replayed += 1
                return self._answers[key]
            answer = self._upstream(method, path, body, headers)
            if answer.status < 500:
                self._answers[key] = answer
            return answer

    def _upstream(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> Answer:
        request = urllib.request.Request(  # noqa: S310 - the loopback emulator
            self.upstream + path, data=body or None, method=method,
            headers={k: v for k, v in headers.items() if k.lower() not in ("host", "connection")},
        )  # fmt: skip
        self.forwarded += 1
        try:
            with urllib.request.urlopen(request, timeout=120) as resp:  # noqa: S310
                return Answer(resp.status, resp.read(), resp.headers.get("Content-Type", ""))
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, exc.read(), exc.headers.get("Content-Type", ""))

    def control(self, query: str) -> tuple[int, bytes]:
        params = {k: v[0] for k, v in parse_qs(query).items()}
        mode = params.get("mode", "")
        if mode in ("", "none", "off"):
            self.clear()
            return 200, b'{"fault": null}'
        try:
            self.inject(mode, seconds=float(params.get("seconds", "10")),
                        fraction=float(params.get("fraction", "1")))  # fmt: skip
        except ValueError as exc:
            return 400, f'{{"error": "{exc}"}}'.encode()
        return 200, f'{{"fault": "{mode}"}}'.encode()


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A caller gone mid-call (a web worker killed by the soak) is expected, not news."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parts = urlsplit(self.path)
            if parts.path == "/_fault":
                status, answer = proxy.control(parts.query)
                self._send(Answer(status, answer, "application/json"))
                return
            mode = proxy.pick()
            if mode == "error":
                self._send(Answer(500, ERROR_BODY, "application/json"))
                return
            if mode == "drop" and proxy.coin():
                self._drop()  # before the emulator saw it
                return
            answer = proxy.forward(self.command, self.path, body, dict(self.headers.items()))
            if mode == "timeout":
                time.sleep(proxy.hold)
            if mode in ("timeout", "drop"):
                self._drop()  # after: the emulator did it, the answer is lost
                return
            self._send(answer)

        def _drop(self) -> None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

        def _send(self, answer: Answer) -> None:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type or "application/json")
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        do_GET = do_POST = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the soak reports what it injected

    return Handler
