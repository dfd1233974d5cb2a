"""What the fuzz tests share: how hard to try (``TESSERA_FUZZ_EXAMPLES``), a live Tessera
(``tessera serve``, gunicorn, on a database of its own) for schemathesis to talk to over
HTTP, and the figures each run leaves in ``test-output/fuzz-summary.json``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.smtp import free_port
from tests.support.stack import wait_http
from tests.support.stripe import SECRET_KEY, WEBHOOK_SECRET

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = Path(os.environ.get("TESSERA_TEST_OUTPUT", ROOT / "test-output"))
SUMMARY = OUTPUT / "fuzz-summary.json"


def examples(default: int) -> int:
    """``default`` in the suite; ``TESSERA_FUZZ_EXAMPLES`` (``make fuzz``) raises it."""
    raw = os.environ.get("TESSERA_FUZZ_EXAMPLES", "")
    return max(default, int(raw)) if raw.isdigit() else default


def long_run() -> bool:
    return bool(os.environ.get("TESSERA_FUZZ_EXAMPLES", "").isdigit())


def record(name: str, figures: dict[str, Any]) -> None:
    """Merge one test's figures into the summary file, and print them (seen with -s)."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    try:
        summary = json.loads(SUMMARY.read_text())
    except (OSError, ValueError):
        summary = {}
    summary[name] = figures
    SUMMARY.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    lines = ", ".join(f"{k}={v}" for k, v in figures.items() if not isinstance(v, dict | list))
    print(f"\n[fuzz] {name}: {lines}")  # noqa: T201 - the run's figures


@dataclass
class LiveServer:
    base: str
    api_key: str
    database: str


def _maintenance(url: str) -> str:
    """The server's ``postgres`` database: the one that surely exists to create ours from."""
    return url.rsplit("/", 1)[0] + "/postgres"


def _database_url(tmp: Path) -> str:
    """A SQLite file in ``tmp``, or on PostgreSQL (the suite's pass there) a database of its
    own, named after this process so concurrent runs never share one."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        return f"sqlite:///{tmp / 'fuzz.sqlite3'}"
    import psycopg

    name = f"tessera_fuzz_{os.getpid()}"
    with psycopg.connect(_maintenance(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + f"/{name}"


def _drop_database(url: str) -> None:
    if not url.startswith("postgres"):
        return
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(_maintenance(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "tessera.cli", *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"tessera {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


@contextmanager
def live_server(localstripe_url: str, tmp: Path, workers: int = 2) -> Iterator[LiveServer]:
    """``tessera serve`` on a free port with a migrated database of its own and an admin
    API key, stopped (and its PostgreSQL database dropped) afterwards."""
    database = _database_url(tmp)
    logs = OUTPUT / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {
        **{k: v for k, v in os.environ.items() if k != "TESSERA_TESTING"},
        "DATABASE_URL": database, "SECRET_KEY": "fuzz-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1,localhost", "TESSERA_SECURE_COOKIES": "0",
        # One client fires every case: the production rate limits would answer 429 to most.
        "TESSERA_API_AUTH_FAILURE_RATE": "1000000/m", "TESSERA_CHECKOUT_RATE": "1000000/m",
        "TESSERA_CHECKOUT_RATE_PER_CLIENT": "1000000/m",
        "EMAIL_URL": "console://", "TESSERA_ADMIN_EMAIL": "admin@fuzz.test",
        "STRIPE_API_BASE": localstripe_url, "STRIPE_SECRET_KEY": SECRET_KEY,
        "STRIPE_PUBLISHABLE_KEY": "pk_test_tessera", "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}",
    }  # fmt: skip
    port = free_port()
    process: subprocess.Popen[bytes] | None = None
    try:
        _run(env, "migrate", "-v", "0")
        key = _run(env, "apikey", "create", "--name", "fuzz", "--scope", "admin").strip()
        log = (logs / "fuzz-serve.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "tessera.cli", "serve", "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(workers)],
            env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/api/v1/openapi.json", process)
        yield LiveServer(base, key, database)
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        _drop_database(database)


# A Stripe test card localstripe knows, for the links that pay.
TEST_CARD = {"method": "card", "payment_method_id": "pm_card_visa"}


def fetch_document(base: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{base}/api/v1/openapi.json", timeout=20) as answer:  # noqa: S310
        return dict(json.loads(answer.read()))


def for_stateful_runs(document: dict[str, Any]) -> dict[str, Any]:
    """The served document, tuned for scenarios that get somewhere: a link's request body
    is sent whole (not mixed field by field with generated data, which would break the
    person or the lines it carries), the item's checkout link gets a twin paying with a
    test card, a member's credit purchase pays with it too, and programs sell credit in
    the card's currency. Only generation changes: answers are checked against the
    document as served."""
    paths = document["paths"]
    for operations in paths.values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                links = response.get("links", {})
                for link in links.values():
                    if "requestBody" in link:
                        link["x-schemathesis"] = {"merge_body": False}
                if "CheckOutTheItem" in links:
                    by_card = json.loads(json.dumps(links["CheckOutTheItem"]))
                    by_card["requestBody"]["payment"] = TEST_CARD
                    links["CheckOutTheItemByCard"] = by_card
                if "BuyCredit" in links:
                    links["BuyCredit"]["requestBody"] = {
                        "amount": 2500,
                        "currency": "USD",
                        "payment_method_id": TEST_CARD["payment_method_id"],
                    }
                    links["BuyCredit"]["x-schemathesis"] = {"merge_body": False}
    program = document["components"]["schemas"]["ProgramIn"]["properties"]["currency"]
    program.pop("pattern", None)
    program["enum"] = ["USD"]
    return document
