"""The payment paths answer what happened: a refund of nothing left is too much (409), an
unknown payment method is a bad request (422), a refused order keeps the balance it was
refused at, a card refund's clawback has its own wallet type, and every amount a person
reads is formatted in its currency."""

from __future__ import annotations

import json

import pytest
import stripe

from tessera.billing.models import Refund, Transaction
from tessera.loyalty.models import WalletTransaction
from tests.support.api import Api, assert_problem
from tests.support.loyalty import member, product, program
from tests.support.stripe import paid

pytestmark = pytest.mark.django_db


def refund(admin_api: Api, txn: Transaction, body: dict[str, int] | None = None) -> dict:
    return json.loads(admin_api.post(f"/transactions/{txn.pk}/refunds", body or {}).content)


class TestRefundOfNothingLeft:
    def test_refunding_the_rest_of_a_fully_refunded_payment_is_409(
        self, admin_api: Api, stripe_env: stripe.StripeClient
    ) -> None:
        txn, _ = paid(stripe_env)
        refund(admin_api, txn)
        assert_problem(
            admin_api.post(f"/transactions/{txn.pk}/refunds", {}), 409, "refund_exceeds_remaining"
        )

    def test_it_says_nothing_is_left_in_the_currency(
        self, admin_api: Api, stripe_env: stripe.StripeClient
    ) -> None:
        txn, _ = paid(stripe_env, amount=2500)
        refund(admin_api, txn)
        body = json.loads(admin_api.post(f"/transactions/{txn.pk}/refunds", {}).content)
        assert body["detail"] == "Nothing is left to refund: all $25.00 was refunded."

    def test_it_refunds_nothing_more(self, admin_api: Api, stripe_env: stripe.StripeClient) -> None:
        txn, _ = paid(stripe_env)
        refund(admin_api, txn)
        admin_api.post(f"/transactions/{txn.pk}/refunds", {})
        assert Refund.objects.count() == 1

    def test_too_much_is_said_in_the_currency_not_in_cents(
        self, admin_api: Api, stripe_env: stripe.StripeClient
    ) -> None:
        txn, _ = paid(stripe_env, amount=2500)
        refund(admin_api, txn, {"amount": 2000})
        body = json.loads(
            admin_api.post(f"/transactions/{txn.pk}/refunds", {"amount": 1000}).content
        )
        assert body["detail"] == "$10.00 asked; $5.00 of $25.00 is left to refund."


class TestUnknownPaymentMethod:
    def buy(self, api: Api, key: str = "topup-unknown") -> tuple[int, dict]:
        m = member(program())
        r = api.post(
            f"/members/{m.pk}/credit-purchases",
            {"amount": 1000, "currency": "USD", "payment_method_id": "pm_does_not_exist"},
            headers={"Idempotency-Key": key},
        )
        return r.status_code, json.loads(r.content)

    def test_it_is_a_422(self, api: Api, stripe_env: stripe.StripeClient) -> None:
        assert self.buy(api)[0] == 422

    def test_it_names_the_field(self, api: Api, stripe_env: stripe.StripeClient) -> None:
        assert [e["field"] for e in self.buy(api)[1]["errors"]] == ["payment_method_id"]

    def test_it_is_not_called_a_decline(self, api: Api, stripe_env: stripe.StripeClient) -> None:
        assert "decline_code" not in self.buy(api)[1]

    def test_the_transaction_says_why_it_failed(
        self, api: Api, stripe_env: stripe.StripeClient
    ) -> None:
        body = self.buy(api)[1]
        txn = Transaction.objects.get(pk=body["transaction_id"])
        assert (txn.status, txn.failure_code) == ("failed", "invalid_payment_method")

    def test_a_retry_gets_the_same_answer(self, api: Api, stripe_env: stripe.StripeClient) -> None:
        m = member(program())
        body = {"amount": 1000, "currency": "USD", "payment_method_id": "pm_does_not_exist"}
        headers = {"Idempotency-Key": "topup-retry"}
        path = f"/members/{m.pk}/credit-purchases"
        first = api.post(path, body, headers=headers)
        second = api.post(path, body, headers=headers)
        assert (second.status_code, json.loads(second.content)["transaction_id"]) == (
            422,
            json.loads(first.content)["transaction_id"],
        )


class TestRefusedOrder:
    def test_it_shows_the_balance_it_was_refused_at(self, api: Api, admin_api: Api) -> None:
        prog = program()
        m = member(prog, points=30)
        mug = product(prog, 50)
        refused = json.loads(
            api.post(
                f"/members/{m.pk}/orders", {"lines": [{"product_id": mug.pk, "quantity": 1}]}
            ).content
        )
        admin_api.post(f"/members/{m.pk}/adjustments", {"points": 500, "reason": "gift"})
        shown = json.loads(api.get(f"/orders/{refused['order_id']}").content)
        assert shown["balance_after"] == 30


class TestCardRefundInTheWallet:
    def clawback(self, admin_api: Api, stripe_env: stripe.StripeClient) -> WalletTransaction:
        txn, m = paid(stripe_env, amount=1000)
        refund(admin_api, txn, {"amount": 400})
        return WalletTransaction.objects.filter(member=m).order_by("-id").first()

    def test_it_has_its_own_type(self, admin_api: Api, stripe_env: stripe.StripeClient) -> None:
        assert self.clawback(admin_api, stripe_env).type == "credit_refunded"

    def test_it_has_its_own_label(self, admin_api: Api, stripe_env: stripe.StripeClient) -> None:
        assert self.clawback(admin_api, stripe_env).label == "Credit Refunded"

    def test_it_references_the_refund(
        self, admin_api: Api, stripe_env: stripe.StripeClient
    ) -> None:
        assert self.clawback(admin_api, stripe_env).reference == Refund.objects.get().pk

    def test_the_wallet_lists_it_so(
        self, api: Api, admin_api: Api, stripe_env: stripe.StripeClient
    ) -> None:
        wtx = self.clawback(admin_api, stripe_env)
        items = json.loads(api.get(f"/members/{wtx.member_id}/wallet/transactions").content)
        assert (items["items"][0]["type"], items["items"][0]["label"]) == (
            "credit_refunded",
            "Credit Refunded",
        )
