"""The operations of the soak's mix, each one HTTP exchange (or a short flow) with Tessera.

``pick(client)`` chooses one by weight. Writes go through ``Client.write`` (a key each, a
retry with it, sometimes a repeat)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import requests
from bench.soak_stack import STRIPE_KEY, WEBHOOK_SECRET
from bench.soak_workload import CARD_3DS, Call, Client, session

SIGNIN_LINK = re.compile(r"https?://[^/\s]+(/signin/link\?\S+)")
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
TOKEN = re.compile(r'name="token" value="([^"]+)"')
PORTAL_PAGES = ("/", "/wallet", "/earn", "/shop", "/events", "/tickets")
CREDIT_AMOUNT = 500  # USD cents


def _person(client: Client) -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    return {"first_name": f"Buyer{tag}", "last_name": "Soak", "email": f"b{tag}@soak.test"}


def checkout(client: Client, payment: str) -> None:
    """One attendee, one ticket: free, by card (4242) or from a member's wallet."""
    events: dict[str, dict[str, str]] = client.stack.seed["events"]
    event = events["limited" if client.rng.random() < 0.35 else "open"]
    person = _person(client)
    item = event["free" if payment == "free" else "paid"]
    body: dict[str, Any] = {"buyer": person, "attendees": [
        {**person, "items": [{"item_id": item, "quantity": 1}], "answers": []}]}  # fmt: skip
    if payment == "card":
        pm = client.card()
        if pm is None:
            return
        body["payment"] = {"method": "card", "payment_method_id": pm}
    elif payment == "wallet":
        body["payment"] = {"method": "wallet", "member_id": client.member()["id"]}
    else:
        body["payment"] = None
    answer = client.write(f"checkout_{payment}", f"/api/v1/events/{event['id']}/checkout", body)
    if answer.status == 201 and isinstance(answer.body, dict):
        created = [("checkout", answer.body["id"]), ("invoice", answer.body["invoice"]["id"])]
        txn = answer.body.get("transaction") or {}
        with client.record.lock:
            client.record.created.extend(created)
            if txn.get("id"):
                client.record.created.append(("transaction", txn["id"]))
                client.record.paid_checkouts.append((answer.body["id"], txn["id"]))


def order(client: Client) -> None:
    products: list[str] = client.stack.seed["products"]
    product = products[client.rng.randrange(len(products))]
    member = client.member()["id"]
    answer = client.write("order", f"/api/v1/members/{member}/orders",
                          {"lines": [{"product_id": product, "quantity": 1}]})  # fmt: skip
    if answer.status == 201 and isinstance(answer.body, dict):
        with client.record.lock:
            client.record.created.append(("order", answer.body["id"]))


def completion(client: Client) -> None:
    activities: list[str] = client.stack.seed["activities"]
    activity = activities[client.rng.randrange(len(activities))]
    path = f"/api/v1/members/{client.member()['id']}/activities/{activity}/completions"
    answer = client.write("completion", path, {"answer": client.rng.choice(["yes", "no"])})
    if answer.status == 201 and isinstance(answer.body, dict):
        with client.record.lock:
            client.record.created.append(("completion", answer.body["id"]))


def credit_purchase(client: Client) -> None:
    """Wallet credit by card; a 3-D Secure card is authenticated at the emulator and then
    confirmed by our own signed webhook (every other time) or left to the reconciler."""
    three_ds = client.rng.random() < 0.3
    pm = client.card(CARD_3DS if three_ds else "4242424242424242")
    if pm is None:
        return
    body = {"amount": CREDIT_AMOUNT, "currency": "USD", "payment_method_id": pm}
    member = client.member()["id"]
    answer = client.write("credit", f"/api/v1/members/{member}/credit-purchases", body)
    if answer.status not in (201, 202) or not isinstance(answer.body, dict):
        return
    txn = answer.body["transaction_id"]
    with client.record.lock:
        client.record.created.append(("transaction", txn))
        client.record.credit.append((txn, answer.status, ""))
    if answer.status == 202 and answer.body.get("client_secret"):
        secret = str(answer.body["client_secret"])
        pi = secret.split("_secret")[0]
        if _authenticate(pi, secret, client.stack.localstripe) and client.rng.random() < 0.5:
            webhooks_for(client, pi, txn, CREDIT_AMOUNT)
    elif answer.status == 201:
        pi = _payment_intent_of(client, txn)
        if pi:
            webhooks_for(client, pi, txn, CREDIT_AMOUNT)


def _authenticate(pi: str, secret: str, localstripe: str) -> bool:
    """The member passing 3-D Secure in the page (the emulator's test hook)."""
    try:
        resp = requests.post(f"{localstripe}/v1/payment_intents/{pi}/_authenticate",
                             params={"client_secret": secret, "success": "true"},
                             auth=(STRIPE_KEY, ""), timeout=30)  # fmt: skip
    except requests.RequestException:
        return False
    return resp.status_code == 200


def _payment_intent_of(client: Client, txn: str) -> str:
    answer = client.send("read_transaction", "GET", f"/api/v1/transactions/{txn}")
    if answer.status == 200 and isinstance(answer.body, dict):
        return str(answer.body.get("stripe_payment_intent_id") or "")
    return ""


def signed(event: dict[str, Any]) -> tuple[bytes, str]:
    payload = json.dumps(event).encode()
    ts = int(time.time())
    sig = hmac.new(WEBHOOK_SECRET.encode(), f"{ts}.".encode() + payload, hashlib.sha256)
    return payload, f"t={ts},v1={sig.hexdigest()}"


def _pi_event(kind: str, pi: str, txn: str, amount: int, created: int) -> dict[str, Any]:
    status = "succeeded" if kind.endswith("succeeded") else "requires_payment_method"
    return {"id": f"evt_soak_{uuid.uuid4().hex[:16]}", "object": "event", "type": kind,
            "created": created, "data": {"object": {
                "id": pi, "object": "payment_intent", "amount": amount, "status": status,
                "metadata": {"tessera_transaction": txn}}}}  # fmt: skip


def webhooks_for(client: Client, pi: str, txn: str, amount: int) -> None:
    """As Stripe delivers: the success, sometimes twice, and an older failure after it."""
    now = int(time.time())
    success = _pi_event("payment_intent.succeeded", pi, txn, amount, now)
    deliveries = [success]
    if client.rng.random() < 0.5:
        deliveries.append(success)  # a replay of the same event
    if client.rng.random() < 0.5:  # out of order: an older failure arrives last
        deliveries.append(_pi_event("payment_intent.payment_failed", pi, txn, amount, now - 60))
    for event in deliveries:
        post_webhook(client, event)


def post_webhook(client: Client, event: dict[str, Any]) -> None:
    payload, signature = signed(event)
    start, t0 = client.record.now(), time.perf_counter()
    try:
        resp = requests.post(f"{client.stack.base}/api/v1/webhooks/stripe", data=payload,
                             headers={"Stripe-Signature": signature,
                                      "Content-Type": "application/json"}, timeout=60)  # fmt: skip
        status, error = resp.status_code, ""
    except requests.RequestException as exc:
        status, error = 0, type(exc).__name__
    client.record.add(Call("webhook", status, start, time.perf_counter() - t0, error))


def portal_view(client: Client) -> None:
    if client.portal is None:
        client.portal = sign_in(client, _own_member(client))
        if client.portal is None:
            return
    page = PORTAL_PAGES[client.rng.randrange(len(PORTAL_PAGES))]
    start, t0 = client.record.now(), time.perf_counter()
    try:
        resp = client.portal.get(client.stack.base + page, timeout=60, allow_redirects=False)
        status, error = resp.status_code, ""
    except requests.RequestException as exc:
        status, error = 0, type(exc).__name__
    client.record.add(Call(f"portal {page}", status, start, time.perf_counter() - t0, error))


def _own_member(client: Client) -> str:
    """A member per client: two clients signing in as one would spend each other's link."""
    members: list[dict[str, str]] = client.stack.seed["members"]
    return members[client.index % len(members)]["email"]


def sign_in(client: Client, email: str) -> requests.Session | None:
    """Through the emailed single-use link, as a member does: ask, read the mail, post."""
    browser, base = session(), client.stack.base
    try:
        form = browser.get(f"{base}/signin", timeout=60).text
        csrf = CSRF.search(form)
        if csrf is None:
            return None
        already = len(_mails_to(client, email))
        browser.post(f"{base}/signin", timeout=60, headers={"Referer": f"{base}/signin"},
                     data={"csrfmiddlewaretoken": csrf.group(1), "mode": "link",
                           "email": email, "next": "/"})  # fmt: skip
        link = _wait_link(client, email, already)
        if link is None:
            return None
        page = browser.get(base + link, timeout=60).text
        token, csrf = TOKEN.search(page), CSRF.search(page)
        if token is None or csrf is None:
            return None
        done = browser.post(f"{base}/signin/link", timeout=60, allow_redirects=False,
                            headers={"Referer": base + link},
                            data={"csrfmiddlewaretoken": csrf.group(1), "token": token.group(1),
                                  "next": "/"})  # fmt: skip
    except requests.RequestException:
        return None
    client.record.add(Call("portal signin", done.status_code, client.record.now(), 0.0))
    return browser if done.status_code == 302 else None


def _mails_to(client: Client, email: str) -> list[Any]:
    return [m for m in list(client.stack.inbox.messages) if email in str(m["To"])]


def _wait_link(client: Client, email: str, already: int) -> str | None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        mails = _mails_to(client, email)
        if len(mails) > already:
            found = SIGNIN_LINK.search(text_of(mails[-1]))
            return found.group(1) if found else None
        time.sleep(0.3)
    return None


def text_of(message: Any) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return str(part.get_payload(decode=True).decode())
    return ""


def read(client: Client) -> None:
    member = client.member()["id"]
    with client.record.lock:
        invoices = [i for kind, i in client.record.created[-200:] if kind == "invoice"]
    choices = [("read_contacts", "/api/v1/contacts?limit=20"),
               ("read_wallet", f"/api/v1/members/{member}/wallet"),
               ("read_wallet_txns", f"/api/v1/members/{member}/wallet/transactions")]  # fmt: skip
    if invoices:
        choices.append(("read_invoice", f"/api/v1/invoices/{client.rng.choice(invoices)}"))
    op, path = client.rng.choice(choices)
    client.send(op, "GET", path)


WEIGHTS: list[tuple[float, Callable[[Client], None]]] = [
    (3, lambda c: checkout(c, "free")),
    (2, lambda c: checkout(c, "card")),
    (2, lambda c: checkout(c, "wallet")),
    (2, order),
    (2, completion),
    (1.5, credit_purchase),
    (3, portal_view),
    (4, read),
]


def pick(client: Client) -> Callable[[], None]:
    total = sum(w for w, _ in WEIGHTS)
    roll = client.rng.random() * total
    for weight, op in WEIGHTS:
        roll -= weight
        if roll <= 0:
            return lambda: op(client)
    return lambda: read(client)
