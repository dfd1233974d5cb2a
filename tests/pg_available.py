"""Exit 0 if the test PostgreSQL answers; otherwise explain and exit 1.

Used by `make test-postgres`: without PostgreSQL the PostgreSQL run is skipped with this
message, unless TESSERA_REQUIRE_POSTGRES=1 (CI), which turns it into a failure.
"""

from __future__ import annotations

import os
import sys

import dj_database_url
import psycopg

URL = os.environ.get("TESSERA_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")


def main() -> int:
    cfg = dj_database_url.parse(URL)
    try:
        with psycopg.connect(
            host=cfg["HOST"] or "127.0.0.1",
            port=int(cfg["PORT"] or 5432),
            user=cfg["USER"] or "postgres",
            password=cfg["PASSWORD"] or None,
            dbname=cfg["NAME"] or "postgres",
            connect_timeout=5,
        ) as conn:
            conn.execute("select 1")
    except psycopg.Error as exc:
        print(
            f"SKIPPED: the PostgreSQL test run, because PostgreSQL is unreachable at {URL}: "
            f"{str(exc).strip()}\n"
            "  Start it (see README) or set TESSERA_TEST_DATABASE_URL. "
            "Row-lock and concurrency tests only run there.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
