"""/staff/: the week's figures at a glance, and the way to everything else.

The page and its charts share the same aggregates (``metrics``); the page shows each
chart's numbers in a table beside it, for those who cannot see the image.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from tessera.events.models import Event
from tessera.portal.charts import CHART_POLICY, svg_response
from tessera.portal.identity import staff_page
from tessera.portal.policy import replacing
from tessera.portal.staff import charts, metrics
from tessera.portal.staff.metrics import Series
from tessera.portal.templatetags.portal import money, pts

EVENTS_PER_PAGE = 50


@dataclass(frozen=True)
class ChartTable:
    """A chart's image and its numbers: one row per label, one column per series."""

    name: str
    title: str
    columns: list[str]
    rows: list[tuple[str, list[str]]]

    @property
    def alt(self) -> str:
        return f"Bar chart: {self.title}. Its numbers are in the table beside it."


def _cell(series: Series, index: int, value: int) -> str:
    if series.unit == "points":
        return pts(value)
    if series.unit == "money":
        return money(value, series.currencies[index])
    return str(value)


def chart_table(name: str, series: Series) -> ChartTable:
    rows = [
        (label, [_cell(series, i, values[i]) for values in series.values.values()])
        for i, label in enumerate(series.labels)
    ]
    return ChartTable(name, series.title, list(series.values), rows)


@require_GET
@staff_page
def dashboard(request: HttpRequest) -> HttpResponse:
    weeks = metrics.last_weeks()
    moved = metrics.wallet_weeks(weeks)
    figures = metrics.event_figures(metrics.upcoming_events())
    low_count, low_members = metrics.low_balance()
    weekly = [
        chart_table("points", metrics.points_series(weeks, moved)),
        chart_table("credit", metrics.credit_series(weeks, moved)),
        chart_table("refused", metrics.refused_series(weeks)),
    ]
    per_event = [
        chart_table("registrations", metrics.registrations_series(figures)),
        chart_table("revenue", metrics.revenue_series(figures)),
        chart_table("checkins", metrics.checkins_series(figures)),
    ]
    return render(
        request,
        "portal/staff/dashboard.html",
        {
            "section": "staff",
            "weekly": weekly,
            "per_event": per_event if figures else [],
            "figures": figures,
            "low_count": low_count,
            "low_members": low_members,
        },
    )


@require_GET
@staff_page
@replacing(CHART_POLICY)
def chart(request: HttpRequest, name: str) -> HttpResponse:
    build = charts.CHARTS.get(name)
    if build is None:
        raise Http404("no such chart")
    return svg_response(charts.render(build()))


@require_GET
@staff_page
def events(request: HttpRequest) -> HttpResponse:
    listed = Event.objects.order_by("-starts_at", "id")
    page = Paginator(listed, EVENTS_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "portal/staff/events.html", {"section": "staff", "page": page})
