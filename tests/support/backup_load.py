"""Places wallet orders through the real services until told to stop, and logs the id of
each order once it has committed: the tests of `tessera backup` run it beside a backup.

    python -m tests.support.backup_load LOG STOP_FILE [--threads N]

It sets up a program, one unlimited product and a member with wallet credit per thread,
then each thread orders one product at a time until STOP_FILE exists.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import traceback
from pathlib import Path

CREDIT = 1_000_000
PAUSE_SECONDS = 0.05


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("log", type=Path)
    parser.add_argument("stop", type=Path)
    parser.add_argument("--threads", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tessera.settings")
    import django

    django.setup()
    from django.db import connections

    from tessera.loyalty.ordering import OrderLineSpec, place_order
    from tests.support.loyalty import member, product, program

    prog = program(name="Backup club", low_balance_threshold=0)
    mug = product(prog, 1)
    buyers = [member(prog, f"buyer{i}@example.com", points=CREDIT) for i in range(args.threads)]
    connections.close_all()
    lock = threading.Lock()
    failures: list[str] = []

    with args.log.open("a", encoding="utf-8") as log:

        def buy(member_id: str) -> None:
            try:
                while not args.stop.exists():
                    order = place_order(member_id, [OrderLineSpec(mug.pk, 1)]).order
                    # Written once place_order has returned, after its commit: an id in the
                    # log is an order that had committed before its line appeared.
                    with lock:
                        log.write(f"{order.pk}\n")
                        log.flush()
                    # A steady stream, not a flood: the backup it runs beside shares the CPU.
                    time.sleep(PAUSE_SECONDS)
            except Exception:  # reported below, and the exit status says so
                failures.append(traceback.format_exc())
            finally:
                connections.close_all()

        threads = [threading.Thread(target=buy, args=(b.pk,)) for b in buyers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    for failure in failures:
        sys.stderr.write(failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
