"""schemathesis against our own OpenAPI schema: no input, valid or not, gets a 500, a
non-problem error, or a response that breaks the schema; data the document calls valid
is accepted, and data it calls invalid is refused (its positive and negative conformance
checks), over every operation."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tessera.api.schemas import UNSTORABLE_MOMENT
from tessera.core.apikeys import create_api_key
from tests.support.fuzz import examples, record
from tests.support.stripe import WEBHOOK_SECRET, signed

schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", WSGIHandler())
# 402 is the answer to a state (a wallet that does not cover an order, a declined card),
# never to the shape of the data, like 409: valid data may meet it.
schema.config.checks.positive_data_acceptance.expected_statuses = [
    *schema.config.checks.positive_data_acceptance.expected_statuses,
    "402",
]
CURRENT_KEY: list[str] = []
CASES: Counter[str] = Counter()
WEBHOOK = "/api/v1/webhooks/stripe"
# Relations between fields of one body that JSON Schema cannot state (the document says
# them in words): a rule's logic must parse and name its criteria, whose numbers are
# unique; a question's correct option must be one of its options; an end must follow its
# start; a select question has options and a text one none; an answer's value fits its
# question's type. Valid-looking data may break them and is then refused with a 422 naming exactly
# that field.
CROSS_FIELD = frozenset(
    {
        "logic",
        "criteria",
        "correct_option",
        "ends_at",
        "sales_end",
        "valid_until",
        "options",
        "value",
    }
)


@schema.auth(refresh_interval=None)
class BearerKey:
    """Registered as the schema's auth, so schemathesis knows requests are authenticated
    and does not count our header as an unexpected one."""

    def get(self, case: schemathesis.Case, ctx: Any) -> str:
        return CURRENT_KEY[-1] if CURRENT_KEY else "tsk_not-yet-created"

    def set(self, case: schemathesis.Case, data: str, ctx: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture
def api_key(db: None) -> Iterator[None]:
    # Keep the test's connection across in-process requests, as Django's test client does:
    # the request signals would otherwise close it mid-transaction.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    _, raw = create_api_key("fuzz", ["admin"])
    CURRENT_KEY.append(raw)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def webhook_secret(settings: Any) -> None:
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET


def _signed_webhook(case: schemathesis.Case) -> dict[str, Any]:
    """Sign the generated event as Stripe would, so the fuzzer reaches the event handling
    itself: a signature is an opaque token no schema can describe."""
    if not isinstance(case.body, dict | list | str | int | float | bool | None):
        return {}  # no body at all: nothing to sign, and it must be refused
    sent = (case.headers or {}).get("Stripe-Signature")
    if not isinstance(sent, str) or not 0 < len(sent) <= 2000:
        return {}  # the header itself is the invalid part: keep it, it must be refused
    payload, signature = signed(case.body)
    return {"headers": {"Stripe-Signature": signature}, "data": payload}


# Opaque tokens: any string fits the schema, only ones we issued are valid (a ticket's
# signed code, a waitlist offer's token, a Stripe payment method's id).
OPAQUE = frozenset({"code", "waitlist_token", "payment_method_id"})


def _refused_for_a_cross_field_rule(response: Any) -> bool:
    if response.status_code != 422:
        return False
    errors = json.loads(response.content).get("errors") or []
    refusable = CROSS_FIELD | OPAQUE
    return bool(errors) and all(
        e["field"].split(".")[-1] in refusable
        # A date-time the format allows but with no UTC form (year 1 an hour east of
        # Greenwich): the format cannot state the calendar's edge.
        or e["message"].endswith(UNSTORABLE_MOMENT)
        for e in errors
    )


@schema.parametrize()
@settings(
    max_examples=examples(25),
    deadline=None,
    # CI must not fail at random: there the search is seeded; locally it explores anew.
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@pytest.mark.usefixtures("api_key", "webhook_secret")
def test_api_answers_every_input_properly(case: schemathesis.Case) -> None:
    CASES[f"{case.method} {case.path}"] += 1
    extra = _signed_webhook(case) if case.path == WEBHOOK else {}
    response = case.call(**extra)
    excluded = []
    if case.query and "cursor" in case.query:
        # A cursor is an opaque token: any string fits the schema, but only ones we issued
        # are valid, and the rest rightly get 422.
        excluded.append(positive_data_acceptance)
    if _refused_for_a_cross_field_rule(response):
        excluded.append(positive_data_acceptance)
    case.validate_response(response, excluded_checks=excluded)
    if response.status_code >= 400:
        content_type = {k.lower(): v for k, v in response.headers.items()}["content-type"]
        assert content_type[0].startswith("application/problem+json"), content_type


def test_every_operation_was_exercised() -> None:
    """Runs after the fuzzing above (pytest keeps file order): every operation in the
    document got cases, so a new endpoint cannot slip past the fuzzer."""
    operations = {
        f"{result.ok().method.upper()} {result.ok().path}" for result in schema.get_all_operations()
    }
    print("\nschemathesis cases per operation:")  # noqa: T201 - the run's figures, with -s
    for label in sorted(operations):
        print(f"  {CASES[label]:5d}  {label}")  # noqa: T201
    print(f"  {sum(CASES.values()):5d}  in all, {len(operations)} operations")  # noqa: T201
    record(
        "stateless_in_process",
        {
            "operations": len(operations),
            "operations_reached": len([op for op in operations if CASES[op]]),
            "cases": sum(CASES.values()),
            "per_operation": {op: CASES[op] for op in sorted(operations)},
        },
    )
    assert not [op for op in operations if CASES[op] == 0]
