"""/metrics: who may scrape it, the HTTP metrics of django-prometheus, Tessera's outcome
counters, the gauges counted in the database at scrape time, and multiprocess mode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.db import DatabaseError
from django.test import Client
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tessera.core import metrics
from tessera.notifications.models import OutboundEmail
from tests.support.api import Api
from tests.support.events import attendee, body, event, item
from tests.support.loyalty import funded_member_and_product

pytestmark = pytest.mark.django_db


def scrape(**extra: Any) -> Any:
    return Client().get("/metrics", **extra)


def samples(response: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by name and sorted labels."""
    out = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- who may scrape ---------------------------------------------------------------------------


def test_this_machine_may_scrape_without_a_token() -> None:
    assert scrape().status_code == 200


def test_the_scrape_is_prometheus_text() -> None:
    assert scrape()["Content-Type"].startswith("text/plain; version=")


def test_another_machine_gets_404_without_a_token() -> None:
    assert scrape(REMOTE_ADDR="203.0.113.7").status_code == 404


def test_the_refusal_is_a_problem_document() -> None:
    response = scrape(REMOTE_ADDR="203.0.113.7")
    assert json.loads(response.content)["code"] == "not_found"


def test_the_refusal_shows_no_metrics() -> None:
    assert b"tessera_" not in scrape(REMOTE_ADDR="203.0.113.7").content


def test_a_request_relayed_by_a_local_proxy_is_not_local() -> None:
    """A reverse proxy on this host makes every visitor 127.0.0.1; its header gives it away."""
    assert scrape(HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 404


def test_with_a_token_its_bearer_may_scrape_from_anywhere(settings: Any) -> None:
    settings.TESSERA_METRICS_TOKEN = "scrape-secret"
    response = scrape(REMOTE_ADDR="203.0.113.7", HTTP_AUTHORIZATION="Bearer scrape-secret")
    assert response.status_code == 200


def test_with_a_token_a_wrong_one_gets_404(settings: Any) -> None:
    settings.TESSERA_METRICS_TOKEN = "scrape-secret"
    assert scrape(HTTP_AUTHORIZATION="Bearer guess").status_code == 404


def test_with_a_token_this_machine_needs_it_too(settings: Any) -> None:
    settings.TESSERA_METRICS_TOKEN = "scrape-secret"
    assert scrape().status_code == 404


def test_metrics_are_not_redirected_to_https(settings: Any) -> None:
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    assert scrape().status_code == 200


def test_a_scrape_sets_no_cookie() -> None:
    assert not scrape().cookies


# --- HTTP metrics (django-prometheus) --------------------------------------------------------


def test_request_latency_is_recorded_by_view() -> None:
    name = "django_http_requests_latency_seconds_by_view_method_count"
    before = counted(name, view="healthz", method="GET")
    Client().get("/healthz")
    assert counted(name, view="healthz", method="GET") == before + 1


def test_api_routes_have_their_own_latency_series(api: Api) -> None:
    api.get("/contacts")
    views = {labels["view"] for _, labels in _latency_series()}
    assert any("contact" in view for view in views), views


def _latency_series() -> list[tuple[str, dict[str, str]]]:
    name = "django_http_requests_latency_seconds_by_view_method"
    return [
        (s.name, s.labels)
        for family in REGISTRY.collect()
        if family.name == name
        for s in family.samples
        if s.name == f"{name}_count"
    ]


# --- outcome counters ------------------------------------------------------------------------


def test_a_free_checkout_is_counted_free(api: Api) -> None:
    ev = event()
    ticket = item(ev, price=0)
    before = counted("tessera_checkouts_total", outcome="free")
    assert api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket))).status_code == 201
    assert counted("tessera_checkouts_total", outcome="free") == before + 1


def test_a_sold_out_checkout_is_counted_sold_out(api: Api) -> None:
    ev = event()
    ticket = item(ev, price=0, capacity=1)
    api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket, 1)))
    before = counted("tessera_checkouts_total", outcome="sold_out")
    assert api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket, 2))).status_code == 409
    assert counted("tessera_checkouts_total", outcome="sold_out") == before + 1


def test_an_invalid_checkout_is_counted_invalid(api: Api) -> None:
    ev = event()
    ticket = item(ev, price=100)  # a paid ticket sent without a payment
    before = counted("tessera_checkouts_total", outcome="invalid")
    assert api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket))).status_code == 422
    assert counted("tessera_checkouts_total", outcome="invalid") == before + 1


def test_a_refused_checkout_is_not_counted_as_completed(api: Api) -> None:
    ev = event()
    ticket = item(ev, price=100)
    before = counted("tessera_checkouts_total", outcome="free")
    api.post(f"/events/{ev.pk}/checkout", body(attendee(ticket)))
    assert counted("tessera_checkouts_total", outcome="free") == before


def test_a_placed_order_is_counted(api: Api) -> None:
    m, mug = funded_member_and_product(points=1000, price=300)
    before = counted("tessera_orders_total", outcome="placed")
    lines = {"lines": [{"product_id": mug.pk, "quantity": 1}]}
    assert api.post(f"/members/{m.pk}/orders", lines).status_code == 201
    assert counted("tessera_orders_total", outcome="placed") == before + 1


def test_an_order_the_wallet_cannot_cover_is_counted(api: Api) -> None:
    m, mug = funded_member_and_product(points=100, price=300, low_balance_threshold=0)
    before = counted("tessera_orders_total", outcome="insufficient_balance")
    lines = {"lines": [{"product_id": mug.pk, "quantity": 1}]}
    assert api.post(f"/members/{m.pk}/orders", lines).status_code == 402
    assert counted("tessera_orders_total", outcome="insufficient_balance") == before + 1


def test_a_refused_order_is_not_counted_placed(api: Api) -> None:
    m, mug = funded_member_and_product(points=100, price=300, low_balance_threshold=0)
    before = counted("tessera_orders_total", outcome="placed")
    api.post(f"/members/{m.pk}/orders", {"lines": [{"product_id": mug.pk, "quantity": 1}]})
    assert counted("tessera_orders_total", outcome="placed") == before


def test_every_outcome_is_exposed_from_the_start() -> None:
    assert ("tessera_checkouts_total", (("outcome", "declined"),)) in samples(scrape())


def test_an_unknown_outcome_is_counted_as_error() -> None:
    before = counted("tessera_orders_total", outcome="error")
    metrics.record_order("something-new")
    assert counted("tessera_orders_total", outcome="error") == before + 1


# --- gauges read at scrape time --------------------------------------------------------------


def _email(status: str) -> OutboundEmail:
    return OutboundEmail.objects.create(template="t", to="a@example.org", subject="s",
                                        text_body="b", status=status)  # fmt: skip


def test_emails_are_counted_by_status() -> None:
    for status in ("queued", "queued", "failed"):
        _email(status)
    assert samples(scrape())[("tessera_emails", (("status", "queued"),))] == 2


def test_a_status_without_emails_is_zero() -> None:
    _email("sent")
    assert samples(scrape())[("tessera_emails", (("status", "failed"),))] == 0


def test_jobs_waiting_are_counted_per_queue() -> None:
    from tessera.notifications.tasks import send_email

    send_email.enqueue("eml_x")
    send_email.enqueue("eml_y")
    key = ("tessera_jobs", (("queue", "default"), ("state", "ready")))
    assert samples(scrape())[key] == 2


def test_no_job_running_is_zero() -> None:
    key = ("tessera_jobs", (("queue", "default"), ("state", "running")))
    assert samples(scrape())[key] == 0


def test_the_oldest_waiting_job_has_an_age() -> None:
    from django_tasks_db.models import DBTaskResult

    from tessera.notifications.tasks import send_email

    send_email.enqueue("eml_x")
    DBTaskResult.objects.update(enqueued_at="2000-01-01T00:00:00Z")
    key = ("tessera_jobs_oldest_ready_age_seconds", (("queue", "default"),))
    assert samples(scrape())[key] > 24 * 3600


def test_a_scrape_without_the_database_still_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Any) -> Any:
        raise DatabaseError("gone")

    monkeypatch.setattr(metrics.DatabaseCollector, "_tasks", broken)
    assert scrape().status_code == 200


def test_a_scrape_without_the_database_leaves_its_gauges_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(self: Any) -> Any:
        raise DatabaseError("gone")

    monkeypatch.setattr(metrics.DatabaseCollector, "_tasks", broken)
    assert b"tessera_emails{" not in scrape().content


# --- multiprocess mode -----------------------------------------------------------------------

_OTHER_PROCESS = (
    "from prometheus_client import Counter;"
    "Counter('tessera_checkouts', 'x', ['outcome']).labels('paid').inc(5)"
)


def test_multiprocess_mode_adds_up_every_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another gunicorn worker counted 5 paid checkouts into the shared directory."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "-c", _OTHER_PROCESS], env=env, check=True, timeout=60)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert samples(scrape())[("tessera_checkouts_total", (("outcome", "paid"),))] == 5


def test_multiprocess_mode_still_counts_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    _email("queued")
    assert samples(scrape())[("tessera_emails", (("status", "queued"),))] == 1
