"""The email gauge on ``/metrics``: outbound emails per status, counted at each scrape."""

from __future__ import annotations

from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily

from tessera.notifications.models import OutboundEmail


def emails_by_status() -> GaugeMetricFamily:
    family = GaugeMetricFamily("tessera_emails", "Outbound emails per status.", labels=["status"])
    counts = dict.fromkeys(OutboundEmail.Status.values, 0)
    for row in OutboundEmail.objects.values("status").annotate(n=Count("id")).order_by():
        counts[row["status"]] = row["n"]
    for status, n in sorted(counts.items()):
        family.add_metric([status], n)
    return family
