"""localstripe for the soak: in memory only.

``python -m bench.soak_localstripe --port N``. The stock emulator pickles its whole store
to disk on every write, so each call costs more as the store grows (the checkout bench
measured 37.7 s for 300 checkouts' calls with 1,000 PaymentMethods stored); a soak writes
thousands. The soak never restarts the emulator, so nothing needs to reach the disk."""

from __future__ import annotations

import argparse


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    from localstripe import resources

    resources.Store.try_load_from_disk = lambda self: None  # type: ignore[method-assign]
    resources.Store.dump_to_disk = lambda self: None  # type: ignore[method-assign]
    from aiohttp import web
    from localstripe import server

    web.run_app(server.app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
