"""Run localstripe (a local Stripe emulator) with its own state file.

localstripe keeps its state in a fixed /tmp path; two instances (the demo and a test run)
would overwrite each other's. ``python -m tessera.billing.localstripe_server --port N
--state FILE`` points the store at FILE first. Development and tests only.
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path, required=True)
    args = parser.parse_args()

    from localstripe import resources

    state: Path = args.state

    def load(self: dict) -> None:
        if state.exists():
            with state.open("rb") as f:
                old = pickle.load(f)  # noqa: S301 - our own file, written below
            self.clear()
            self.update(old)

    def dump(self: dict) -> None:
        with state.open("wb") as f:
            pickle.dump(dict(self), f, protocol=pickle.HIGHEST_PROTOCOL)

    resources.Store.try_load_from_disk = load
    resources.Store.dump_to_disk = dump
    from aiohttp import web
    from localstripe import server

    server.app.middlewares.insert(0, _as_stripe_js_does(web, server, resources))
    server.store.try_load_from_disk()
    # Loopback only: the emulator is for this machine's tests and demo.
    web.run_app(server.app, host="127.0.0.1", port=args.port, print=None, access_log=None)


# What Stripe.js does that localstripe's copy does not: create a PaymentMethod in the
# browser with the publishable key (``stripe.createPaymentMethod``). The card goes from the
# page to the emulator, as it would go to Stripe, and never through Tessera.
CREATE_PAYMENT_METHOD_JS = """
(function () {
  const original = Stripe;
  Stripe = function (apiKey, options) {
    const client = original(apiKey, options);
    client.createPaymentMethod = async function (data) {
      const element = data.card || data.element;
      const value = (element && element.value) || {card: {}};
      const card = value.card || {};
      try {
        const response = await fetch(`${LOCALSTRIPE_BASE_API}/v1/payment_methods`, {
          method: 'POST',
          body: JSON.stringify({
            key: apiKey, type: 'card',
            card: {number: card.number || '', exp_month: card.exp_month || '',
                   exp_year: card.exp_year || '', cvc: card.cvc || ''},
            billing_details: data.billing_details || {},
          }),
        });
        const body = await response.json().catch(() => ({}));
        if (response.status !== 200 || body.error) {
          return {error: body.error || {message: 'Your card number is incomplete.'}};
        }
        return {paymentMethod: body};
      } catch (err) {
        return {error: {message: String(err)}};
      }
    };
    return client;
  };
})();
"""


def _as_stripe_js_does(web, server, resources):
    import json as _json
    import os

    @web.middleware
    async def middleware(request, handler):
        if request.method == "GET" and request.path == "/js.stripe.com/v3/":
            path = os.path.join(
                os.path.dirname(os.path.realpath(server.__file__)), "localstripe-v3.js"
            )
            with open(path) as f:
                text = f.read() + CREATE_PAYMENT_METHOD_JS
            return web.Response(text=text, content_type="application/javascript")
        if request.method == "POST" and request.path == "/v1/payment_methods":
            raw = await request.text()
            try:
                data = _json.loads(raw)
            except ValueError:
                data = None
            if isinstance(data, dict) and str(data.get("key", "")).startswith("pk_"):
                del data["key"]
                try:
                    method = resources.PaymentMethod._api_create(**data)
                except Exception as exc:  # the emulator's own checks: a bad card
                    body = {
                        "error": {"type": "card_error", "message": f"Your card was refused: {exc}"}
                    }
                    return web.json_response(body, status=402)
                response = web.json_response(method._export())
                server.store.dump_to_disk()
                return response
        return await handler(request)

    return middleware


if __name__ == "__main__":
    main()
