"""The API takes what its document says and nothing looser: JSON types as sent, active
currencies, methods that fit their fields, a JSON content type, and errors that name the
fields a client sent."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client

from tessera.billing.models import Transaction
from tessera.crm.matching.models import MatchingRule
from tessera.crm.models import Contact
from tessera.loyalty.models import Activity, Order, Product, Program
from tests.support.api import Api, assert_problem
from tests.support.loyalty import funded_member_and_product, member, program

pytestmark = pytest.mark.django_db

# A path a client could have sent: field names and list indexes, dotted.
SENT_PATH = re.compile(r"([a-z_][a-z0-9_]*|\d+)(\.([a-z_][a-z0-9_]*|\d+))*")


def fields(body: dict[str, Any]) -> list[str]:
    return [e["field"] for e in body["errors"]]


PROGRAM = {"name": "Club", "points_per_unit": 10, "currency": "EUR", "low_balance_threshold": 0}


class TestJsonTypesAreStrict:
    def test_an_amount_as_a_string_is_refused(self, api: Api) -> None:
        m = member(program())
        body = assert_problem(
            api.post(
                f"/members/{m.pk}/credit-purchases",
                {"amount": "25.00", "currency": "USD", "payment_method_id": "pm_card_visa"},
            ),
            422,
            "validation_error",
        )
        assert fields(body) == ["amount"]

    def test_a_refused_amount_charges_nothing(self, api: Api) -> None:
        m = member(program())
        api.post(
            f"/members/{m.pk}/credit-purchases",
            {"amount": "25.00", "currency": "USD", "payment_method_id": "pm_card_visa"},
        )
        assert Transaction.objects.count() == 0

    def test_a_rate_as_a_string_is_refused(self, admin_api: Api) -> None:
        body = assert_problem(
            admin_api.post("/programs", {**PROGRAM, "points_per_unit": "10"}),
            422,
            "validation_error",
        )
        assert fields(body) == ["points_per_unit"]

    def test_a_refused_program_is_not_created(self, admin_api: Api) -> None:
        admin_api.post("/programs", {**PROGRAM, "points_per_unit": "10"})
        assert Program.objects.count() == 0

    def test_a_quantity_as_a_string_is_refused(self, api: Api) -> None:
        m, mug = funded_member_and_product(points=100, price=10)
        body = assert_problem(
            api.post(
                f"/members/{m.pk}/orders", {"lines": [{"product_id": mug.pk, "quantity": "2"}]}
            ),
            422,
            "validation_error",
        )
        assert fields(body) == ["lines.0.quantity"]

    def test_a_refused_order_is_not_placed(self, api: Api) -> None:
        m, mug = funded_member_and_product(points=100, price=10)
        api.post(f"/members/{m.pk}/orders", {"lines": [{"product_id": mug.pk, "quantity": "2"}]})
        assert Order.objects.count() == 0

    def test_a_whole_number_written_with_a_fraction_is_a_number(self, api: Api) -> None:
        m, mug = funded_member_and_product(points=100, price=10)
        r = api.post(
            f"/members/{m.pk}/orders", {"lines": [{"product_id": mug.pk, "quantity": 2.0}]}
        )
        assert json.loads(r.content)["total_points"] == 20

    def test_a_fraction_is_not_a_count(self, api: Api) -> None:
        m, mug = funded_member_and_product(points=100, price=10)
        r = api.post(
            f"/members/{m.pk}/orders", {"lines": [{"product_id": mug.pk, "quantity": 2.5}]}
        )
        assert_problem(r, 422, "validation_error")

    @pytest.mark.parametrize("flag", [0, 1, "true", None])
    def test_a_flag_must_be_a_boolean(self, admin_api: Api, flag: Any) -> None:
        prog = program()
        body = assert_problem(
            admin_api.post(
                "/products",
                {"program_id": prog.pk, "name": "Mug", "price_points": 5, "active": flag},
            ),
            422,
            "validation_error",
        )
        assert fields(body) == ["active"]

    def test_a_refused_flag_creates_no_product(self, admin_api: Api) -> None:
        prog = program()
        admin_api.post(
            "/products", {"program_id": prog.pk, "name": "Mug", "price_points": 5, "active": 0}
        )
        assert Product.objects.count() == 0

    def test_a_boolean_is_not_a_number(self, admin_api: Api) -> None:
        body = assert_problem(
            admin_api.post("/programs", {**PROGRAM, "points_per_unit": True}),
            422,
            "validation_error",
        )
        assert fields(body) == ["points_per_unit"]

    def test_a_timestamp_needs_its_offset(self, admin_api: Api) -> None:
        prog = program()
        body = assert_problem(
            admin_api.post(
                "/activities",
                {"program_id": prog.pk, "kind": "video", "title": "Clip", "points": 1,
                 "video_url": "https://example.com/v", "starts_at": "2026-05-01T09:00:00"},
            ),
            422,
            "validation_error",
        )  # fmt: skip
        assert fields(body) == ["starts_at"]

    def test_a_timestamp_with_no_utc_form_is_refused(self, admin_api: Api) -> None:
        start = "0001-01-01T00:00:00+01:00"  # an hour before the calendar begins, in UTC
        body = assert_problem(
            admin_api.post(
                "/events",
                {"name": "Edge", "starts_at": start, "ends_at": "2026-05-01T09:00:00+00:00",
                 "timezone": "UTC", "currency": "USD"},
            ),
            422,
            "validation_error",
        )  # fmt: skip
        assert fields(body) == ["starts_at"]

    def test_a_number_is_not_a_timestamp(self, admin_api: Api) -> None:
        prog = program()
        body = assert_problem(
            admin_api.post(
                "/activities",
                {"program_id": prog.pk, "kind": "video", "title": "Clip", "points": 1,
                 "video_url": "https://example.com/v", "starts_at": 1700000000},
            ),
            422,
            "validation_error",
        )  # fmt: skip
        assert fields(body) == ["starts_at"]


class TestCurrencies:
    def test_a_lower_case_code_is_accepted(self, admin_api: Api) -> None:
        r = admin_api.post("/programs", {**PROGRAM, "currency": "usd"})
        assert r.status_code == 201, r.content

    def test_a_lower_case_code_is_answered_upper_case(self, admin_api: Api) -> None:
        r = admin_api.post("/programs", {**PROGRAM, "currency": "usd"})
        assert json.loads(r.content)["currency"] == "USD"

    def test_a_lower_case_code_is_stored_upper_case(self, admin_api: Api) -> None:
        admin_api.post("/programs", {**PROGRAM, "currency": "eUr"})
        assert Program.objects.get().currency == "EUR"

    @pytest.mark.parametrize("code", ["DEM", "HRK", "XYZ", "PTS", "US", 840])
    def test_a_withdrawn_or_unknown_code_is_refused(self, admin_api: Api, code: Any) -> None:
        body = assert_problem(
            admin_api.post("/programs", {**PROGRAM, "currency": code}), 422, "validation_error"
        )
        assert fields(body) == ["currency"]

    def test_a_credit_purchase_in_a_withdrawn_currency_is_refused(self, api: Api) -> None:
        m = member(program())
        body = assert_problem(
            api.post(
                f"/members/{m.pk}/credit-purchases",
                {"amount": 2500, "currency": "DEM", "payment_method_id": "pm_card_visa"},
            ),
            422,
            "validation_error",
        )
        assert fields(body) == ["currency"]


RULE = {
    "object": "contact",
    "name": "By birthday",
    "logic": "1 AND 2",
    "criteria": [
        {"field": "last_name", "method": "last_name", "threshold": 90},
        {"field": "birthdate", "method": "exact", "threshold": 100},
    ],
}


class TestMatchingCriteria:
    def test_a_method_that_does_not_fit_its_field_is_refused(self, admin_api: Api) -> None:
        criteria = [RULE["criteria"][0], {"field": "birthdate", "method": "phone"}]
        body = assert_problem(
            admin_api.post("/matching-rules", {**RULE, "criteria": criteria}),
            422,
            "validation_error",
        )
        assert fields(body) == ["criteria.1.method"]

    def test_a_refused_rule_is_not_saved(self, admin_api: Api) -> None:
        before = MatchingRule.objects.count()
        criteria = [RULE["criteria"][0], {"field": "birthdate", "method": "phone"}]
        admin_api.post("/matching-rules", {**RULE, "criteria": criteria})
        assert MatchingRule.objects.count() == before

    def test_a_field_the_object_lacks_is_refused(self, admin_api: Api) -> None:
        criteria = [{"field": "name", "method": "company"}]
        body = assert_problem(
            admin_api.post("/matching-rules", {**RULE, "logic": "1", "criteria": criteria}),
            422,
            "validation_error",
        )
        assert fields(body) == ["criteria.0.field"]

    def test_a_fitting_method_is_accepted(self, admin_api: Api) -> None:
        r = admin_api.post("/matching-rules", RULE)
        assert r.status_code == 201, r.content

    def test_an_update_with_a_misfit_method_is_refused(self, admin_api: Api) -> None:
        rule = json.loads(admin_api.post("/matching-rules", RULE).content)
        criteria = [RULE["criteria"][0], {"field": "birthdate", "method": "street"}]
        body = assert_problem(
            admin_api.send("PUT", f"/matching-rules/{rule['id']}", {"criteria": criteria}),
            422,
            "validation_error",
        )
        assert fields(body) == ["criteria.1.method"]

    def test_the_service_refuses_a_misfit_method_too(self) -> None:
        from tessera.core.errors import ValidationFailed
        from tessera.crm.matching.services import check_definition

        with pytest.raises(ValidationFailed):
            check_definition("contact", "1", [{"field": "birthdate", "method": "phone"}])


class TestActivities:
    def vote(self, prog: Program, **kw: Any) -> dict[str, Any]:
        return {"program_id": prog.pk, "kind": "vote", "title": "Colour", "points": 1,
                "question": "Which?", "options": ["a", "b"], **kw}  # fmt: skip

    def test_a_vote_with_repeated_options_is_refused(self, admin_api: Api) -> None:
        body = assert_problem(
            admin_api.post("/activities", self.vote(program(), options=["a", "a"])),
            422,
            "validation_error",
        )
        assert fields(body) == ["options"]

    def test_a_refused_vote_is_not_created(self, admin_api: Api) -> None:
        admin_api.post("/activities", self.vote(program(), options=["a", "a"]))
        assert Activity.objects.count() == 0

    def test_a_vote_needs_two_options(self, admin_api: Api) -> None:
        body = assert_problem(
            admin_api.post("/activities", self.vote(program(), options=["a"])),
            422,
            "validation_error",
        )
        assert fields(body) == ["options"]

    def test_an_unknown_kind_names_the_kind(self, admin_api: Api) -> None:
        body = assert_problem(
            admin_api.post("/activities", self.vote(program(), kind="quiz")),
            422,
            "validation_error",
        )
        assert fields(body) == ["kind"]

    def test_a_field_of_another_kind_is_unknown(self, admin_api: Api) -> None:
        body = assert_problem(
            admin_api.post("/activities", self.vote(program(), video_url="https://x.example/v")),
            422,
            "validation_error",
        )
        assert body["errors"] == [{"field": "video_url", "message": "is not a known field"}]


class TestContentType:
    def post(self, api: Api, content_type: str | None) -> Any:
        body = json.dumps({"last_name": "Lovelace"})
        headers = {"Authorization": f"Bearer {api.raw_key}"}
        if content_type is None:
            return Client().generic("POST", "/api/v1/contacts", body, headers=headers)
        return Client().generic(
            "POST", "/api/v1/contacts", body, content_type=content_type, headers=headers
        )

    @pytest.mark.parametrize(
        "content_type",
        ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"],
    )
    def test_a_body_that_is_not_json_is_415(self, api: Api, content_type: str) -> None:
        assert_problem(self.post(api, content_type), 415, "unsupported_media_type")

    def test_a_body_without_a_content_type_is_415(self, api: Api) -> None:
        assert_problem(self.post(api, ""), 415, "unsupported_media_type")

    def test_a_refused_body_writes_nothing(self, api: Api) -> None:
        self.post(api, "text/plain")
        assert Contact.objects.count() == 0

    def test_json_with_its_charset_is_accepted(self, api: Api) -> None:
        r = self.post(api, "application/json; charset=utf-8")
        assert r.status_code == 201, r.content

    def test_a_post_without_a_body_needs_no_content_type(self, api: Api) -> None:
        m, mug = funded_member_and_product(points=100, price=10)
        order = json.loads(
            api.post(
                f"/members/{m.pk}/orders",
                {"lines": [{"product_id": mug.pk, "quantity": 1}]},
            ).content
        )
        headers = {"Authorization": f"Bearer {api.raw_key}"}
        r = Client().generic("POST", f"/api/v1/orders/{order['id']}/refund", b"", headers=headers)
        assert r.status_code == 200, r.content


class TestErrorsNameSentFields:
    def test_both_person_fields_name_the_second(self, api: Api) -> None:
        body = assert_problem(
            api.post("/members", {"program_id": program().pk, "contact_id": "con_x",
                                  "contact": {"last_name": "Lovelace"}}),
            422,
            "validation_error",
        )  # fmt: skip
        assert fields(body) == ["contact_id"]

    def test_a_nested_error_names_its_path(self, api: Api) -> None:
        body = assert_problem(
            api.post("/members", {"program_id": program().pk, "contact": {"last_name": 3}}),
            422,
            "validation_error",
        )
        assert fields(body) == ["contact.last_name"]

    @pytest.mark.parametrize(
        ("path", "payload"),
        [
            ("/members", {"program_id": "p", "contact": {"first_name": 1}, "contact_id": 2}),
            ("/activities", {"kind": "question", "options": [1, 2], "points": "x"}),
            ("/matching-rules", {"object": "account", "criteria": [{"field": "first_name"}]}),
            ("/matching-rules", {"object": "lead", "criteria": [{"field": "email", "method": 1}]}),
        ],
    )
    def test_no_error_names_a_validator(
        self, admin_api: Api, path: str, payload: dict[str, Any]
    ) -> None:
        body = assert_problem(admin_api.post(path, payload), 422, "validation_error")
        assert all(SENT_PATH.fullmatch(f) for f in fields(body)), fields(body)

    def test_no_message_names_a_validator(self, api: Api) -> None:
        r = api.post("/members", {"program_id": "p", "contact": {"first_name": 1}, "contact_id": 2})
        assert "function-" not in r.content.decode()


class TestLengthsTheDocumentStates:
    def test_a_program_name_of_the_stated_maximum_is_stored(self, admin_api: Api) -> None:
        # Its ledger accounts are named after it; those names used to overflow their column
        # (a 422 "cannot store" on PostgreSQL for a name the document allows).
        r = admin_api.post("/programs", {**PROGRAM, "name": "N" * 200})
        assert r.status_code == 201, r.content

    def test_a_program_name_over_the_maximum_is_refused(self, admin_api: Api) -> None:
        body = assert_problem(
            admin_api.post("/programs", {**PROGRAM, "name": "N" * 201}), 422, "validation_error"
        )
        assert fields(body) == ["name"]
