"""localstripe for the soak: in memory only.

``python -m bench.soak_localstripe --port N``. The stock emulator pickles its whole store
to disk on every write, so each call costs more as the store grows (the checkout bench
measured 37.7 s for 300 checkouts' calls with 1,000 PaymentMethods stored); a soak writes
thousands. The soak never restarts the emulator, so nothing needs to reach the disk.

It also answers Stripe's PaymentIntent search on metadata (``metadata['k']:'v'`` clauses
joined by OR, all Tessera asks), which the stock emulator lacks. Without it Tessera falls
back to listing every PaymentIntent, which the emulator serves a page at a time by scanning
its whole store: after a web worker was killed mid-payment, one such walk over ~2,900
payments held the emulator's only thread for about 70 s and every web thread waiting on
Stripe with it. Real Stripe searches; the soak should measure Tessera, not that walk."""

from __future__ import annotations

import argparse
import re
from typing import Any

CLAUSE = re.compile(r"metadata\['([^']+)'\]:'([^']*)'")


def search_payment_intents(query: str = "", limit: Any = None, **_: Any) -> Any:
    """The PaymentIntents whose metadata matches one of the query's clauses."""
    from localstripe.resources import List, PaymentIntent, UserError, store

    clauses = CLAUSE.findall(query)
    if not clauses or len(clauses) != query.count(":"):
        raise UserError(400, f"unsupported search query: {query!r}")
    prefix = PaymentIntent.object + ":"
    found = List("/v1/payment_intents/search", limit=limit or 10)
    found._list = [
        pi for key, pi in store.items()
        if key.startswith(prefix)
        and any((pi.metadata or {}).get(k) == v for k, v in clauses)
    ]  # fmt: skip
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    from localstripe import resources

    resources.Store.try_load_from_disk = lambda self: None  # type: ignore[method-assign]
    resources.Store.dump_to_disk = lambda self: None  # type: ignore[method-assign]
    # Before the server's routes are made: its /payment_intents/{id} would take "search".
    resources.extra_apis.insert(0, ("GET", "/v1/payment_intents/search", search_payment_intents))
    from aiohttp import web
    from localstripe import server

    web.run_app(server.app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
