"""The dashboard's charts as SVG documents, drawn by pygal on the server.

Each chart is its own response shown with ``<img>``: pygal's SVG carries a ``<style>`` and
a ``<script>`` that the page's Content-Security-Policy (rightly) refuses inline. As an image
it runs no script at all: see ``tessera.portal.charts``.
"""

from __future__ import annotations

from collections.abc import Callable

import pygal

from tessera.core.money import minor_unit_digits
from tessera.portal.charts import STYLE, svg
from tessera.portal.staff import metrics
from tessera.portal.staff.metrics import Series


def _plotted(series: Series, values: list[int]) -> list[float]:
    if series.unit != "money":
        return [float(v) for v in values]
    return [v / 10 ** minor_unit_digits(c) for v, c in zip(values, series.currencies, strict=True)]


def render(series: Series) -> bytes:
    chart = pygal.Bar(
        style=STYLE,
        js=[],  # no tooltips script fetched from pygal's site
        width=800,
        height=360,
        title=series.title,
        x_label_rotation=-30 if len(series.labels) > 6 else 0,
        truncate_label=24,
        legend_at_bottom=True,
        print_zeroes=False,
        y_title=_axis_title(series),
    )
    chart.x_labels = series.labels
    for name, values in series.values.items():
        chart.add(name, _plotted(series, values))
    return svg(chart)


def _axis_title(series: Series) -> str:
    if series.unit == "money":
        return "Major units, in each event's currency"
    return "Points" if series.unit == "points" else "Count"


def _weekly(build: Callable[[list[metrics.Week], dict[str, list[int]]], Series]) -> Series:
    weeks = metrics.last_weeks()
    return build(weeks, metrics.wallet_weeks(weeks))


def _per_event(build: Callable[[list[metrics.EventFigures]], Series]) -> Series:
    return build(metrics.event_figures(metrics.upcoming_events()))


# Each chart computes only its own figures: one or two queries per image.
CHARTS: dict[str, Callable[[], Series]] = {
    "points": lambda: _weekly(metrics.points_series),
    "credit": lambda: _weekly(metrics.credit_series),
    "refused": lambda: metrics.refused_series(metrics.last_weeks()),
    "registrations": lambda: _per_event(metrics.registrations_series),
    "revenue": lambda: _per_event(metrics.revenue_series),
    "checkins": lambda: _per_event(metrics.checkins_series),
}
