"""Production security settings, read the way production reads them: in a new process with
a production environment (no TESSERA_DEBUG, DEMO or TESTING; a real SECRET_KEY), so what
is tested is settings.py itself, not an override. Django's deploy check must pass, and
requests through Django's test client in that process show the redirect, HSTS, secure
cookies and the security headers, including the Content-Security-Policy."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from functools import cache
from typing import Any

import pytest

from tests.support.cli import tessera

pytestmark = pytest.mark.slow  # each configuration runs in a new process

HOST = "tessera.example.org"
# Runs in the child: each (path, secure, headers) through Django's test client, answered
# with the status, the headers and each cookie's Secure flag. No database is touched.
PROBE = """
import json, sys
import django

django.setup()
from django.test import Client

out = []
for path, secure, headers in json.loads(sys.argv[1]):
    r = Client(HTTP_HOST=sys.argv[2]).get(path, secure=secure, headers=headers)
    out.append({"status": r.status_code, "headers": dict(r.headers.items()),
                "cookies": {k: bool(m["secure"]) for k, m in r.cookies.items()}})
print(json.dumps(out))
"""
PLAIN, TLS = False, True
FORWARDED_HTTPS = {"X-Forwarded-Proto": "https"}


@cache
def production_env(**extra: str) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "PYTHONPATH")}
    return {
        **kept,
        "SECRET_KEY": secrets.token_urlsafe(50),  # 67 random characters
        "ALLOWED_HOSTS": HOST,
        "DATABASE_URL": "sqlite:////nonexistent/tessera.sqlite3",  # never opened
        "DJANGO_SETTINGS_MODULE": "tessera.settings",
        **extra,
    }


# Every request a test looks at, asked once per configuration (one process each).
REQUESTS: list[tuple[str, bool, dict[str, str]]] = [
    ("/signin", PLAIN, {}),
    ("/signin", TLS, {}),
    ("/api/v1/contacts", TLS, {}),
    ("/signin", PLAIN, FORWARDED_HTTPS),
    *[(path, PLAIN, {}) for path in ("/healthz", "/readyz", "/metrics")],
]


@cache
def _answers(env_items: tuple[tuple[str, str], ...]) -> list[dict[str, Any]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(REQUESTS), HOST],
        env=production_env(**dict(env_items)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout.splitlines()[-1]))


def probe(path: str, secure: bool, headers: dict[str, str] | None = None, **env: str) -> Any:
    """The answer to one request in a production process with ``env`` added."""
    answers = _answers(tuple(sorted(env.items())))
    return answers[REQUESTS.index((path, secure, headers or {}))]


# --- Django's deploy check -------------------------------------------------------------------


@pytest.fixture(scope="module")
def deploy_check(tmp_path_factory: pytest.TempPathFactory) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in production_env().items() if k not in ("PATH", "HOME", "LANG")}
    return tessera(tmp_path_factory.mktemp("deploy"), "check", "--deploy", **env)


def test_the_deploy_check_exits_0(deploy_check: subprocess.CompletedProcess[str]) -> None:
    assert deploy_check.returncode == 0, deploy_check.stderr


def test_the_deploy_check_finds_no_issues(deploy_check: subprocess.CompletedProcess[str]) -> None:
    assert "System check identified no issues" in deploy_check.stdout, deploy_check.stderr


def test_the_deploy_check_warns_when_the_site_is_plain_http(tmp_path: Any) -> None:
    env = {k: v for k, v in production_env(TESSERA_HTTPS="0").items() if k != "PATH"}
    checked = tessera(tmp_path, "check", "--deploy", **env)
    assert "security.W008" in checked.stderr  # no SSL redirect: said, not hidden


# --- https by default in production ------------------------------------------------------


def test_plain_http_is_redirected_to_https() -> None:
    assert probe("/signin", PLAIN)["headers"]["Location"] == f"https://{HOST}/signin"


def test_the_redirect_is_permanent() -> None:
    assert probe("/signin", PLAIN)["status"] == 301


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_and_metrics_are_not_redirected(path: str) -> None:
    assert "Location" not in probe(path, PLAIN)["headers"]


def test_https_answers_carry_hsts_for_a_year_with_subdomains() -> None:
    hsts = probe("/signin", TLS)["headers"]["Strict-Transport-Security"]
    assert hsts == "max-age=31536000; includeSubDomains"


def test_hsts_preload_is_sent_only_when_asked_for() -> None:
    hsts = probe("/signin", TLS, TESSERA_HSTS_PRELOAD="1")["headers"]["Strict-Transport-Security"]
    assert hsts.endswith("; preload")


def test_the_hsts_lifetime_is_configurable() -> None:
    hsts = probe("/signin", TLS, TESSERA_HSTS_SECONDS="600")["headers"]["Strict-Transport-Security"]
    assert hsts.startswith("max-age=600;")


def test_cookies_are_secure() -> None:
    assert probe("/signin", TLS)["cookies"] == {"csrftoken": True}


# --- plain-http trials: TESSERA_SECURE_COOKIES=0 or TESSERA_HTTPS=0 ----------------------


def test_insecure_cookies_mean_plain_http_without_redirect() -> None:
    assert probe("/signin", PLAIN, TESSERA_SECURE_COOKIES="0")["status"] == 200


def test_insecure_cookies_mean_no_hsts() -> None:
    answer = probe("/signin", TLS, TESSERA_SECURE_COOKIES="0")
    assert "Strict-Transport-Security" not in answer["headers"]


def test_insecure_cookies_are_not_marked_secure() -> None:
    assert probe("/signin", PLAIN, TESSERA_SECURE_COOKIES="0")["cookies"] == {"csrftoken": False}


def test_https_off_sends_no_redirect() -> None:
    assert probe("/signin", PLAIN, TESSERA_HTTPS="0")["status"] == 200


def test_https_off_makes_cookies_insecure_too() -> None:
    assert probe("/signin", PLAIN, TESSERA_HTTPS="0")["cookies"] == {"csrftoken": False}


def test_https_on_wins_over_insecure_cookies_for_the_redirect() -> None:
    answer = probe("/signin", PLAIN, TESSERA_HTTPS="1", TESSERA_SECURE_COOKIES="0")
    assert answer["status"] == 301


# --- behind a proxy: X-Forwarded-Proto only when trusted ----------------------------------


def test_x_forwarded_proto_is_ignored_by_default() -> None:
    assert probe("/signin", PLAIN, FORWARDED_HTTPS)["status"] == 301


def test_a_trusted_proxy_s_x_forwarded_proto_counts_as_https() -> None:
    answer = probe("/signin", PLAIN, FORWARDED_HTTPS, TESSERA_TRUST_X_FORWARDED_PROTO="1")
    assert answer["status"] == 200


def test_behind_a_trusted_proxy_hsts_is_sent() -> None:
    answer = probe("/signin", PLAIN, FORWARDED_HTTPS, TESSERA_TRUST_X_FORWARDED_PROTO="1")
    assert "Strict-Transport-Security" in answer["headers"]


# --- headers on portal pages and API answers ---------------------------------------------

PAGES = {"portal page": "/signin", "API answer": "/api/v1/contacts"}


@pytest.mark.parametrize("path", PAGES.values(), ids=PAGES.keys())
def test_content_security_policy_is_sent(path: str) -> None:
    policy = probe(path, TLS)["headers"]["Content-Security-Policy"]
    assert "default-src 'self'" in policy


@pytest.mark.parametrize("path", PAGES.values(), ids=PAGES.keys())
def test_the_policy_allows_no_plugins(path: str) -> None:
    assert "object-src 'none'" in probe(path, TLS)["headers"]["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
        ("X-Frame-Options", "DENY"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
    ],
)
@pytest.mark.parametrize("path", PAGES.values(), ids=PAGES.keys())
def test_security_headers_are_sent(path: str, header: str, value: str) -> None:
    assert probe(path, TLS)["headers"][header] == value
