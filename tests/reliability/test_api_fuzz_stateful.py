"""schemathesis's state machine against a live Tessera (``tessera serve``: gunicorn over
HTTP, its own database, localstripe): scenarios follow the document's OpenAPI links (and
the ones schemathesis infers from the ids in the bodies) from what a step created to the
operations that take its id (contact -> timeline, event -> item -> checkout -> invoice,
refund, attendee cancel, check-in; member -> order -> refund; credit purchase ->
transaction), so requests reach past "not found" into the real work. Every answer must be
documented (status, content type, schema), no answer is a 5xx, and every error is
problem+json."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.fuzz import (
    LiveServer,
    examples,
    fetch_document,
    for_stateful_runs,
    live_server,
    long_run,
    record,
)
from tests.support.stripe import signed

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
WEBHOOK = "/api/v1/webhooks/stripe"
CASES: Counter[str] = Counter()
STATUSES: Counter[str] = Counter()
SUCCEEDED: Counter[str] = Counter()


@pytest.fixture(scope="module")
def server(localstripe_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(localstripe_url, Path(tmp_path_factory.mktemp("fuzz-live"))) as live:
        yield live


def _webhook_kwargs(case: schemathesis.Case) -> dict[str, Any]:
    """Sign a generated Stripe event as Stripe would, so it reaches the event handling."""
    if case.path != WEBHOOK or not isinstance(case.body, dict):
        return {}
    payload, signature = signed(case.body)
    return {"headers": {"Stripe-Signature": signature}, "data": payload}


def _repair(case: schemathesis.Case) -> None:
    """Scenarios are about what happens after a create, so the creates they start from
    keep the rules between fields JSON Schema cannot state (an end after its start, a
    sales window in order; an attendee takes one ticket, so the item the checkout link
    buys is one): random data breaks them nearly always. The stateless fuzz test sends
    those rules every kind of data."""
    body = case.body
    if case.method.upper() != "POST" or not isinstance(body, dict):
        return
    if case.path == "/api/v1/events":
        start = datetime.now(UTC) + timedelta(days=30)
        body.update(starts_at=start.isoformat(), ends_at=(start + timedelta(hours=6)).isoformat())
        body.update(status="live")
        body.pop("program_id", None)
    elif case.path == "/api/v1/events/{event_id}/items":
        body.pop("sales_start", None)
        body.pop("sales_end", None)
        body["active"] = True
        body["kind"] = "ticket"  # what the checkout link's attendee takes


def _problem_json(response: Any) -> bool:
    """schemathesis keeps each header as a list of its values, under its lower-case name."""
    headers = {k.lower(): v for k, v in response.headers.items()}
    values = headers.get("content-type") or [""]
    return str(values[0]).startswith("application/problem+json")


def test_stateful_scenarios_get_documented_answers(server: LiveServer) -> None:
    schema = schemathesis.openapi.from_dict(for_stateful_runs(fetch_document(server.base)))
    schema.config.update(
        base_url=server.base, headers={"Authorization": f"Bearer {server.api_key}"}
    )
    steps = 60 if long_run() else 30
    schema.config.phases.stateful.max_steps = steps
    operations = {f"{r.ok().method.upper()} {r.ok().path}" for r in schema.get_all_operations()}
    non_problem_errors: list[str] = []

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: schemathesis.Case) -> None:
            _repair(case)

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return _webhook_kwargs(case)

        def validate_response(self, response: Any, case: schemathesis.Case, **kwargs: Any) -> None:
            label = f"{case.method.upper()} {case.path}"
            CASES[label] += 1
            STATUSES[str(response.status_code)] += 1
            if response.status_code < 300:
                SUCCEEDED[label] += 1
            if response.status_code >= 400 and not _problem_json(response):
                non_problem_errors.append(f"{label} {response.status_code}")
            case.validate_response(response, checks=CHECKS, recorder=self.recorder)

    started = time.monotonic()
    try:
        Workflow.run(
            settings=settings(
                max_examples=examples(20),
                stateful_step_count=steps,
                deadline=None,
                phases=[Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
        )
    finally:  # the figures of a failed run too
        record(
            "stateful_live",
            {
                "operations": len(operations),
                "operations_reached": len([op for op in operations if CASES[op]]),
                "operations_succeeded": len([op for op in operations if SUCCEEDED[op]]),
                "cases": sum(CASES.values()),
                "seconds": round(time.monotonic() - started, 1),
                "statuses": dict(sorted(STATUSES.items())),
                "per_operation": {op: [CASES[op], SUCCEEDED[op]] for op in sorted(operations)},
            },
        )
    assert non_problem_errors == []
