"""Who the client is for rate limits, directly and behind our own reverse proxies."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory

from tessera.core.clientip import client_ip


def request(remote: str, forwarded: str | None = None) -> Any:
    headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return RequestFactory().get("/", REMOTE_ADDR=remote, **headers)


def test_without_trusted_proxies_the_connecting_address_is_the_client(settings: Any) -> None:
    settings.TESSERA_TRUSTED_PROXIES = 0
    assert client_ip(request("10.0.0.9", "203.0.113.7")) == "10.0.0.9"


def test_behind_one_proxy_the_address_it_saw_is_the_client(settings: Any) -> None:
    settings.TESSERA_TRUSTED_PROXIES = 1
    assert client_ip(request("10.0.0.9", "203.0.113.7")) == "203.0.113.7"


def test_an_address_the_client_wrote_itself_is_ignored(settings: Any) -> None:
    settings.TESSERA_TRUSTED_PROXIES = 1
    assert client_ip(request("10.0.0.9", "198.51.100.1, 203.0.113.7")) == "203.0.113.7"


def test_behind_two_proxies_the_outer_ones_entry_is_the_client(settings: Any) -> None:
    settings.TESSERA_TRUSTED_PROXIES = 2
    assert client_ip(request("10.0.0.9", "198.51.100.1, 203.0.113.7, 10.0.0.5")) == ("203.0.113.7")


@pytest.mark.parametrize(
    "forwarded", ["", "not-an-address", "  ,  "], ids=["empty", "junk", "commas"]
)
def test_a_missing_or_broken_forwarded_header_falls_back_to_the_connection(
    settings: Any, forwarded: str
) -> None:
    settings.TESSERA_TRUSTED_PROXIES = 1
    assert client_ip(request("10.0.0.9", forwarded)) == "10.0.0.9"
