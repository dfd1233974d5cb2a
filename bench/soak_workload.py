"""The soak's mixed workload: client threads calling Tessera over HTTP for a bounded time.

Every write carries an ``Idempotency-Key``; some are sent twice with the same key (the
second must replay the first), and a write answered 5xx or with no answer is retried with
its key, as an integrator would. Every call is recorded (operation, status, start, latency)
with the ids a 201 returned, for the checks afterwards."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from bench.soak_stack import STRIPE_KEY, Stack
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

CLIENT_TIMEOUT = 200.0  # beyond a Stripe call held through the SDK's timeout and retries
REPEAT_SHARE = 0.15  # writes sent a second time with the same key and body
CARD_OK, CARD_3DS = "4242424242424242", "4000002500003155"


@dataclass
class Call:
    op: str
    status: int  # 0: no HTTP answer (see ``error``)
    start: float  # seconds since the soak began
    latency: float
    error: str = ""
    replay: bool = False  # the repeat of a write with the same key


@dataclass
class Record:
    """What every client saw, shared between threads under ``lock``."""

    began: float = field(default_factory=time.monotonic)
    calls: list[Call] = field(default_factory=list)
    created: list[tuple[str, str]] = field(default_factory=list)  # (kind, id) from 201s
    paid_checkouts: list[tuple[str, str]] = field(default_factory=list)  # (checkout, txn)
    credit: list[tuple[str, int, str]] = field(default_factory=list)  # (txn, status, key)
    replay_mismatches: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        return time.monotonic() - self.began

    def add(self, call: Call, created: list[tuple[str, str]] | None = None) -> None:
        with self.lock:
            self.calls.append(call)
            self.created.extend(created or [])


@dataclass
class Answer:
    status: int
    body: Any
    replayed: bool
    error: str = ""


def _retry(answer: Answer) -> bool:
    """No answer, a server error, or the key's first request still running (a retry sent
    while the attempt the client gave up on goes on): ask again with the same key."""
    code = answer.body.get("code") if isinstance(answer.body, dict) else None
    if answer.status == 502 and code == "payment_gateway_unavailable":
        return False  # kept for its key: a retry would replay it; reconcile follows it up
    if answer.status == 0 or answer.status >= 500:
        return True
    return answer.status == 409 and code == "idempotency_in_progress"


def session() -> requests.Session:
    """A client's HTTP session, which sends a GET again once when a kept-alive connection
    turns out closed as it is reused (gunicorn closes idle ones), as browsers and most
    HTTP libraries do. Writes are not: they are retried with their Idempotency-Key."""
    http = requests.Session()
    again = Retry(total=1, connect=1, read=1, status=0, allowed_methods=frozenset({"GET"}),
                  raise_on_status=False)  # fmt: skip
    http.mount("http://", HTTPAdapter(max_retries=again))
    return http


class Client:
    """One simulated integrator (an API key) and, for portal views, a member's browser."""

    def __init__(self, stack: Stack, record: Record, index: int) -> None:
        self.stack, self.record, self.index = stack, record, index
        self.rng = random.Random(index)
        self.http = session()
        self.http.headers["Authorization"] = f"Bearer {stack.seed['api_key']}"
        self.portal: requests.Session | None = None
        self.events_sent = 0

    def send(self, op: str, method: str, path: str, body: Any = None, *,
             key: str | None = None, replay: bool = False) -> Answer:  # fmt: skip
        headers = {"Idempotency-Key": key} if key else {}
        start = self.record.now()
        t0 = time.perf_counter()
        try:
            resp = self.http.request(method, self.stack.base + path, json=body,
                                     headers=headers, timeout=CLIENT_TIMEOUT)  # fmt: skip
        except requests.RequestException as exc:
            self.record.add(
                Call(op, 0, start, time.perf_counter() - t0, type(exc).__name__, replay)
            )
            return Answer(0, None, False, type(exc).__name__)
        latency = time.perf_counter() - t0
        try:
            data = resp.json()
        except ValueError:
            data = None
        self.record.add(Call(op, resp.status_code, start, latency, "", replay))
        return Answer(resp.status_code, data, resp.headers.get("Idempotent-Replayed") == "true")

    def write(self, op: str, path: str, body: Any) -> Answer:
        """POST with a fresh key; retried with it after a 5xx or no answer; sometimes repeated."""
        key = f"soak-{uuid.uuid4().hex}"
        first = self.answered(op, path, body, key, self.send(op, "POST", path, body, key=key))
        if first.status in (0, 400, 422) or first.status >= 500 or _retry(first):
            return first  # not remembered by design, or the outcome is still unknown
        if self.rng.random() < REPEAT_SHARE:
            # The repeat too is retried after a fault ate its answer (a restarting database
            # answers 500 before the key is even read): the answer it then gets must replay.
            again = self.send(op, "POST", path, body, key=key, replay=True)
            again = self.answered(op, path, body, key, again)
            if again.status and (again.status != first.status or not again.replayed):
                with self.record.lock:
                    self.record.replay_mismatches.append(
                        f"{op} {key}: first {first.status}, repeat {again.status} "
                        f"(replayed: {again.replayed})"
                    )
        return first

    def answered(self, op: str, path: str, body: Any, key: str, answer: Answer) -> Answer:
        """``answer``, or the one a retry with the same key gets after a 5xx or none."""
        tries = 0
        while _retry(answer) and tries < 6:
            tries += 1
            time.sleep(min(1.0 * tries, 5.0))
            answer = self.send(op, "POST", path, body, key=key, replay=True)
        return answer

    def card(self, number: str = CARD_OK) -> str | None:
        """What Stripe.js does: the card goes to Stripe (the emulator, not the proxy)."""
        try:
            resp = requests.post(
                f"{self.stack.localstripe}/v1/payment_methods", auth=(STRIPE_KEY, ""),
                data={"type": "card", "card[number]": number, "card[exp_month]": "12",
                      "card[exp_year]": "2031", "card[cvc]": "123"}, timeout=30,
            )  # fmt: skip
            return str(resp.json()["id"])
        except (requests.RequestException, KeyError, ValueError):
            return None

    def member(self) -> dict[str, str]:
        members: list[dict[str, str]] = self.stack.seed["members"]
        return members[self.rng.randrange(len(members))]


def run_clients(
    stack: Stack, record: Record, clients: int, seconds: float,
    operations: Callable[[Client], Callable[[], None]],
) -> None:  # fmt: skip
    """``clients`` threads, each repeating the operation ``operations`` picks, for ``seconds``."""
    stop = threading.Event()

    def loop(i: int) -> None:
        client = Client(stack, record, i)
        deadline = record.began + seconds
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                operations(client)()
            except Exception as exc:  # a bench bug must not silently end a client
                record.add(Call("bench_error", 0, record.now(), 0.0, repr(exc)[:200]))
                time.sleep(0.5)

    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + CLIENT_TIMEOUT * 4 + 60)
    stop.set()
