"""What every launcher of a live Tessera stack needs (the e2e portal stack, the fuzz
server, the scale-out stack, the soak and the checkout bench): waiting for a process to
listen or to answer HTTP, and one call to the API with a key."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from typing import Any


def wait_port(
    port: int, proc: subprocess.Popen[bytes] | None, what: str, timeout: float = 60
) -> None:
    """Until ``port`` on the loopback accepts a connection; fails early if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.3):
                return
        except OSError:
            if proc is not None and proc.poll() is not None:
                break
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not start on port {port}")


def wait_http(url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 60) -> None:
    """Until ``url`` answers at all (an error status is an answer: the server is up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server for {url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - the loopback server
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up in {timeout:.0f} s")


def api_call(
    base: str, api_key: str, method: str, path: str, body: Any = None, timeout: float = 20
) -> tuple[int, Any]:
    """One request to ``{base}/api/v1{path}`` on a new connection: its status and JSON."""
    req = urllib.request.Request(  # noqa: S310 - the loopback server under test
        f"{base}/api/v1{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
    )  # fmt: skip
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")
