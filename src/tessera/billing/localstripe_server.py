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

    server.store.try_load_from_disk()
    # Loopback only: the emulator is for this machine's tests and demo.
    web.run_app(server.app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
