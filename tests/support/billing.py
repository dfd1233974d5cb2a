"""Payment faults at the gateway boundary, and the reconciler that repairs them."""

from __future__ import annotations

from io import StringIO
from typing import Any

from django.core.management import call_command

from tessera.billing.gateways.base import GatewayUnavailable
from tessera.billing.gateways.stripe import StripeGateway


class TimeoutAfterCharge(StripeGateway):
    """Stripe charges, then the answer is lost on the way back: the id is never saved."""

    def create_payment(self, **kw: Any) -> Any:
        super().create_payment(**kw)
        raise GatewayUnavailable("read timed out")


def reconcile(since: str = "24h") -> str:
    """`tessera reconcile` over the last ``since``, young transactions included; its output."""
    out = StringIO()
    call_command("reconcile", "--since", since, "--min-age", "0s", stdout=out)
    return out.getvalue()
