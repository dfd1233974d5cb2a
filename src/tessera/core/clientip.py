"""Who the client is, for rate limits: the address that connected, or, behind proxies we
run, the address the outermost of them saw.

Behind a reverse proxy every request connects from the proxy, so limits counted by
``REMOTE_ADDR`` would give all clients one shared allowance: thirty bad keys a minute from
anyone would lock every integration out. ``X-Forwarded-For`` cannot simply be believed
either, since a client writes whatever it likes there. Each proxy appends the address it saw,
so with ``TESSERA_TRUSTED_PROXIES`` proxies of ours in front, the client is the entry that
many places from the right; whatever a client wrote before it is ignored.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    remote = str(request.META.get("REMOTE_ADDR") or "0.0.0.0")  # noqa: S104 - not a bind
    hops = settings.TESSERA_TRUSTED_PROXIES
    if hops <= 0:
        return remote
    chain = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    chain = [part for part in chain if part]
    if len(chain) < hops:
        # Fewer entries than proxies: a request that reached us around them (or a proxy
        # misconfigured); the connecting address is the only one we know.
        return remote
    candidate = chain[-hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote
