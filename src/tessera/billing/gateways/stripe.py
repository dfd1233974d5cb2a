"""The Stripe gateway, on the official SDK (PaymentIntents)."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

import stripe
from django.conf import settings
from stripe.params import RefundCreateParams

from tessera.billing.gateways.base import (
    CardDetails,
    CardRejected,
    Gateway,
    GatewayRejected,
    GatewayUnavailable,
    PaymentMethodUnusable,
    PaymentResult,
    RefundResult,
)

# Network errors, timeouts and 5xx are retried by the SDK with the same idempotency key.
NETWORK_RETRIES = 2
# The metadata that ties a PaymentIntent to our transaction, and how many clauses one
# Stripe search query may join.
METADATA_KEY = "tessera_transaction"
SEARCH_CLAUSES = 10


def _plain(obj: Any) -> dict[str, Any]:
    # StripeObject is no longer a dict in SDK 16; work on plain data.
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _result(obj: Any) -> PaymentResult:
    pi = _plain(obj)
    error = pi.get("last_payment_error") or {}
    status = pi["status"]
    if status in ("requires_payment_method",) and error:
        status = "failed"
    return PaymentResult(
        status=status,
        payment_intent_id=pi["id"],
        amount=int(pi.get("amount") or 0),
        client_secret=pi.get("client_secret"),
        failure_code=str(error.get("decline_code") or error.get("code") or ""),
        failure_message=str(error.get("message") or ""),
    )


@contextmanager
def _stripe_errors() -> Iterator[None]:
    """Stripe's errors on a call (or on the later pages of a listing) as ours: unreachable
    (retry later) or rejected (the same request would be refused again)."""
    try:
        yield
    except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
        raise GatewayUnavailable(str(exc)) from exc
    except stripe.InvalidRequestError as exc:
        raise GatewayRejected(str(exc.user_message or exc)) from exc


def _refund_result(obj: Any) -> RefundResult:
    refund = _plain(obj)
    return RefundResult(
        refund_id=refund["id"],
        status=str(refund["status"]),
        amount=int(refund.get("amount") or 0),
        failure_reason=str(refund.get("failure_reason") or ""),
    )


class StripeGateway:
    def __init__(self, api_key: str | None = None, api_base: str | None = None) -> None:
        base = api_base if api_base is not None else settings.STRIPE_API_BASE
        self.client = stripe.StripeClient(
            api_key or settings.STRIPE_SECRET_KEY,
            base_addresses={"api": base} if base else {},
            max_network_retries=NETWORK_RETRIES,
            # The SDK waits 80 s per attempt by default: with its retries a Stripe that stops
            # answering would hold a web thread for minutes (the soak's timeout fault). A
            # call cut short is retried with the same idempotency key, and one that never
            # answers leaves its payment pending for `tessera reconcile`.
            http_client=stripe.new_default_http_client(timeout=settings.STRIPE_TIMEOUT_SECONDS),
        )

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            raise GatewayUnavailable(str(exc)) from exc
        except stripe.APIError as exc:  # 5xx after the SDK's retries
            raise GatewayUnavailable(str(exc)) from exc
        except stripe.InvalidRequestError as exc:  # a 4xx: the same call would fail again
            raise GatewayRejected(str(exc.user_message or exc)) from exc

    def ensure_customer(self, *, email: str, name: str, idempotency_key: str) -> str:
        customer = self._call(
            self.client.v1.customers.create,
            params={"email": email, "name": name},
            options={"idempotency_key": idempotency_key},
        )
        return str(customer["id"])

    def attach_card(self, payment_method_id: str, customer_id: str) -> CardDetails:
        try:
            pm = _plain(
                self._call(
                    self.client.v1.payment_methods.attach,
                    payment_method_id,
                    params={"customer": customer_id},
                )
            )
        except stripe.CardError as exc:
            error = exc.error
            code = str((error and (error.decline_code or error.code)) or "card_declined")
            raise CardRejected(code, str(exc.user_message or "declined")) from exc
        except GatewayRejected as exc:  # no such payment method, or not usable
            raise PaymentMethodUnusable(str(exc)) from exc
        card = pm.get("card") or {}
        billing = pm.get("billing_details") or {}
        address = billing.get("address") or {}
        return CardDetails(
            payment_method_id=pm["id"],
            brand=str(card.get("brand") or ""),
            last4=str(card.get("last4") or ""),
            exp_month=card.get("exp_month"),
            exp_year=card.get("exp_year"),
            holder_name=str(billing.get("name") or ""),
            billing={
                k: str(address.get(k) or "") for k in ("line1", "city", "postal_code", "country")
            },
        )

    def create_payment(
        self,
        *,
        amount: int,
        currency: str,
        customer_id: str,
        payment_method_id: str,
        capture: bool,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> PaymentResult:
        params = {
            "amount": amount,
            "currency": currency.lower(),
            "customer": customer_id,
            "payment_method": payment_method_id,
            "confirm": True,
            "capture_method": "automatic" if capture else "manual",
            "metadata": metadata,
            "payment_method_types": ["card"],
        }
        try:
            pi = self.client.v1.payment_intents.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        except stripe.CardError as exc:
            error = exc.error
            pi_id = None
            intent = getattr(error, "payment_intent", None) if error is not None else None
            if intent:
                pi_id = _plain(intent).get("id")
            return PaymentResult(
                status="failed",
                payment_intent_id=pi_id,
                amount=amount,
                failure_code=str((error and (error.decline_code or error.code)) or "card_declined"),
                failure_message=str((error and error.message) or exc.user_message or "declined"),
            )
        except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
            raise GatewayUnavailable(str(exc)) from exc
        except stripe.InvalidRequestError as exc:  # e.g. below Stripe's minimum amount
            raise GatewayRejected(str(exc.user_message or exc)) from exc
        return _result(pi)

    def capture(self, payment_intent_id: str, *, idempotency_key: str) -> PaymentResult:
        return _result(self._call(self.client.v1.payment_intents.capture, payment_intent_id,
                                  options={"idempotency_key": idempotency_key}))  # fmt: skip

    def cancel(self, payment_intent_id: str, *, idempotency_key: str) -> PaymentResult:
        return _result(self._call(self.client.v1.payment_intents.cancel, payment_intent_id,
                                  options={"idempotency_key": idempotency_key}))  # fmt: skip

    def refund(
        self,
        payment_intent_id: str,
        amount: int,
        *,
        idempotency_key: str,
        metadata: dict[str, str] | None = None,
    ) -> RefundResult:
        params: RefundCreateParams = {"payment_intent": payment_intent_id, "amount": amount}
        if metadata:
            # Lets find_refund() recognise the refund if we never learn its id.
            params["metadata"] = metadata
        with _stripe_errors():
            refund = self.client.v1.refunds.create(
                params=params, options={"idempotency_key": idempotency_key}
            )
        return _refund_result(refund)

    def retrieve_refund(self, refund_id: str) -> RefundResult:
        with _stripe_errors():
            return _refund_result(self.client.v1.refunds.retrieve(refund_id))

    def find_refund(self, payment_intent_id: str, refund_id: str) -> RefundResult | None:
        """The Stripe refund made for our refund ``refund_id`` when we never saved its id,
        recognised by our metadata among the payment's refunds (Stripe has no refund
        search). Looking first, rather than only repeating the create with the same key,
        also holds after Stripe forgets idempotency keys (24 hours)."""
        with _stripe_errors():  # later pages are fetched while iterating
            listing = self.client.v1.refunds.list(
                params={"payment_intent": payment_intent_id, "limit": 100}
            )
            for item in listing.auto_paging_iter():
                refund = _plain(item)
                if (refund.get("metadata") or {}).get("tessera_refund") == refund_id:
                    return _refund_result(refund)
        return None

    def find_by_transaction(self, transaction_id: str) -> PaymentResult | None:
        """The PaymentIntent we created for a transaction whose Stripe id we never saved
        (we crashed or timed out after Stripe acted): found by our metadata."""
        return self.find_by_transactions([transaction_id]).get(transaction_id)

    def find_by_transactions(self, transaction_ids: Collection[str]) -> dict[str, PaymentResult]:
        """The PaymentIntents of many such transactions, by transaction id; one missing from
        the answer has none that Stripe shows. Asked in batches of Stripe's ten search
        clauses; without search (some regions, and emulators) the payments are listed once
        for the whole batch, not once per transaction, and the listing stops when all are
        found."""
        wanted = set(transaction_ids)
        if not wanted:
            return {}
        try:
            return self._search_by_transaction(sorted(wanted))
        except stripe.InvalidRequestError:
            return self._list_by_transaction(wanted)
        except (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError) as exc:
            raise GatewayUnavailable(str(exc)) from exc

    def _search_by_transaction(self, ids: list[str]) -> dict[str, PaymentResult]:
        found: dict[str, PaymentResult] = {}
        for start in range(0, len(ids), SEARCH_CLAUSES):
            query = " OR ".join(
                f"metadata['{METADATA_KEY}']:'{txn_id}'"
                for txn_id in ids[start : start + SEARCH_CLAUSES]
            )
            page = self.client.v1.payment_intents.search(params={"query": query, "limit": 100})
            for item in page.auto_paging_iter():
                self._keep(found, _plain(item), set(ids))
        return found

    def _list_by_transaction(self, wanted: set[str]) -> dict[str, PaymentResult]:
        found: dict[str, PaymentResult] = {}
        listing = self._call(self.client.v1.payment_intents.list, params={"limit": 100})
        with _stripe_errors():  # later pages are fetched while iterating
            for item in listing.auto_paging_iter():
                self._keep(found, _plain(item), wanted)
                if len(found) == len(wanted):
                    break
        return found

    @staticmethod
    def _keep(found: dict[str, PaymentResult], pi: dict[str, Any], wanted: set[str]) -> None:
        txn_id = (pi.get("metadata") or {}).get(METADATA_KEY)
        if txn_id in wanted:
            found[str(txn_id)] = _result(pi)

    def retrieve(self, payment_intent_id: str) -> PaymentResult:
        return _result(self._call(self.client.v1.payment_intents.retrieve, payment_intent_id))


_gateway: Gateway | None = None


def get_gateway() -> Gateway:
    """The process's gateway; tests swap it to inject faults at this boundary."""
    global _gateway
    if _gateway is None:
        _gateway = StripeGateway()
    return _gateway


def set_gateway(gateway: Gateway | None) -> None:
    global _gateway
    _gateway = gateway
