"""Finding the Stripe payments of transactions whose Stripe id we never saved (a crash or a
timeout after Stripe acted): by the transaction id in their metadata, asked once for a
whole reconcile run rather than once per transaction (without search, Stripe's list is
walked, and a walk per transaction made a long run's reconcile take hours)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Collection
from types import SimpleNamespace
from typing import Any

import pytest
import stripe

from tessera.billing.gateways.base import PaymentResult
from tessera.billing.gateways.stripe import StripeGateway
from tessera.billing.models import Transaction
from tests.support.api import Api
from tests.support.billing import TimeoutAfterCharge, reconcile
from tests.support.loyalty import member, program
from tests.support.stripe import UseGateway, card

pytestmark = pytest.mark.django_db


def pay(gateway: StripeGateway, client: stripe.StripeClient, txn_id: str) -> str:
    """A PaymentIntent at the emulator carrying ``txn_id``, as the checkout makes one. The
    emulator lives for the whole session: each test names its own transactions."""
    customer = gateway.ensure_customer(
        email=f"{txn_id}@example.com", name=txn_id, idempotency_key=f"cus:{txn_id}"
    )
    pm = card(client)
    gateway.attach_card(pm, customer)
    result = gateway.create_payment(
        amount=1000, currency="usd", customer_id=customer, payment_method_id=pm,
        capture=True, idempotency_key=f"txn:{txn_id}:create",
        metadata={"tessera_transaction": txn_id},
    )  # fmt: skip
    assert result.payment_intent_id
    return result.payment_intent_id


@pytest.fixture
def gateway(stripe_env: stripe.StripeClient) -> StripeGateway:
    return StripeGateway()


@pytest.fixture
def t() -> Callable[[str], str]:
    """Transaction ids of this test only (the emulator outlives a test)."""
    run = secrets.token_hex(4)
    return lambda name: f"txn_{run}_{name}"


def test_each_payment_is_found_by_its_transaction(
    gateway: StripeGateway, stripe_env: stripe.StripeClient, t: Callable[[str], str]
) -> None:
    ids = {t(name): pay(gateway, stripe_env, t(name)) for name in "abc"}
    found = gateway.find_by_transactions([t("a"), t("c")])
    assert {k: v.payment_intent_id for k, v in found.items()} == {
        t("a"): ids[t("a")],
        t("c"): ids[t("c")],
    }


def test_a_transaction_stripe_never_saw_is_left_out(
    gateway: StripeGateway, stripe_env: stripe.StripeClient, t: Callable[[str], str]
) -> None:
    pay(gateway, stripe_env, t("a"))
    assert gateway.find_by_transactions([t("a"), t("never")]).keys() == {t("a")}


def test_one_transaction_is_found_alone(
    gateway: StripeGateway, stripe_env: stripe.StripeClient
) -> None:
    pi = pay(gateway, stripe_env, "txn_a")
    found = gateway.find_by_transaction("txn_a")
    assert found is not None
    assert found.payment_intent_id == pi


def test_many_transactions_cost_one_listing_without_search(
    gateway: StripeGateway,
    stripe_env: stripe.StripeClient,
    monkeypatch: pytest.MonkeyPatch,
    t: Callable[[str], str],
) -> None:
    for name in "abc":
        pay(gateway, stripe_env, t(name))
    service = gateway.client.v1.payment_intents
    listings: list[Any] = []
    real_list = service.list
    monkeypatch.setattr(service, "list", lambda **kw: listings.append(kw) or real_list(**kw))
    gateway.find_by_transactions([t("a"), t("b"), t("c"), t("never")])
    assert len(listings) == 1


def test_search_asks_for_ten_transactions_per_query() -> None:
    queries: list[str] = []

    def search(params: dict[str, Any]) -> Any:
        queries.append(params["query"])
        return SimpleNamespace(auto_paging_iter=lambda: iter([]))

    gateway = StripeGateway(api_key="sk_test_x", api_base="http://127.0.0.1:9")
    gateway.client = SimpleNamespace(  # type: ignore[assignment]
        v1=SimpleNamespace(payment_intents=SimpleNamespace(search=search))
    )
    gateway.find_by_transactions([f"txn_{i:02}" for i in range(12)])
    assert [q.count(" OR ") + 1 for q in queries] == [10, 2]


class CountingFinds(StripeGateway):
    def __init__(self) -> None:
        super().__init__()
        self.asked: list[set[str]] = []

    def find_by_transactions(self, transaction_ids: Collection[str]) -> dict[str, PaymentResult]:
        self.asked.append(set(transaction_ids))
        return super().find_by_transactions(transaction_ids)


def unsaved_topups(
    api: Api, client: stripe.StripeClient, count: int, use_gateway: UseGateway
) -> set[str]:
    """``count`` top-ups Stripe charged whose answer was lost: their ids were never saved."""
    with use_gateway(TimeoutAfterCharge()):
        for _ in range(count):
            m = member(program())
            api.post(f"/members/{m.pk}/credit-purchases",
                     {"amount": 1500, "currency": "USD", "payment_method_id": card(client)})  # fmt: skip
    txns = Transaction.objects.filter(stripe_payment_intent_id=None)
    return set(txns.values_list("pk", flat=True))


def test_reconcile_asks_stripe_once_for_all_unsaved_transactions(
    api: Api, stripe_env: stripe.StripeClient, use_gateway: UseGateway
) -> None:
    unsaved = unsaved_topups(api, stripe_env, 3, use_gateway)
    gateway = CountingFinds()
    use_gateway(gateway)
    reconcile()
    assert gateway.asked == [unsaved]


def test_reconcile_settles_every_unsaved_transaction_it_found(
    api: Api, stripe_env: stripe.StripeClient, use_gateway: UseGateway
) -> None:
    unsaved_topups(api, stripe_env, 3, use_gateway)
    reconcile()
    statuses = set(Transaction.objects.values_list("status", flat=True))
    assert statuses == {Transaction.Status.CAPTURED}
