"""The dashboard's charts as SVG documents, drawn by pygal on the server.

Each chart is its own response shown with ``<img>``: pygal's SVG carries a ``<style>`` and
a ``<script>`` that the page's Content-Security-Policy (rightly) refuses inline. As an image
it runs no script at all, so the script is dropped and the chart's response alone allows
inline style (``chart_policy``).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pygal
from pygal.style import Style

from tessera.core.money import minor_unit_digits
from tessera.portal.staff import metrics
from tessera.portal.staff.metrics import Series

# Pico's text colour and two series colours that keep 4.5:1 against white.
STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#373c44",
    foreground_strong="#1d2024",
    foreground_subtle="#6b7280",
    colors=("#0d47a1", "#b34700", "#0b6b2f", "#6a1b9a"),
    font_family="system-ui, sans-serif",
    title_font_size=18,
    label_font_size=13,
    major_label_font_size=13,
    legend_font_size=14,
)
SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL)
# Only this response allows inline style; it still allows no script of any kind.
CHART_POLICY = {"style-src": ["'self'", "'unsafe-inline'"], "script-src": ["'none'"]}


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
    return SCRIPT.sub("", chart.render(is_unicode=True)).encode("utf-8")


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
