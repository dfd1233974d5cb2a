"""Charts drawn on the server as SVG (pygal): no chart script, nothing from a CDN.

Each chart is its own response shown with ``<img>``, so its built-in styles never need the
page's Content-Security-Policy to allow inline styles; its numbers are always in a table
beside it too, for people who cannot see it."""

from __future__ import annotations

from collections.abc import Sequence

import pygal
from django.http import HttpResponse
from pygal.style import Style

STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#1f2933",
    foreground_strong="#1f2933",
    foreground_subtle="#52606d",
    colors=("#1f5fbf", "#0b6b2f", "#a4161a", "#7a4f01"),
    font_family="system-ui, sans-serif",
)


def line_chart(title: str, labels: Sequence[str], series: dict[str, Sequence[int]]) -> bytes:
    chart = pygal.Line(
        style=STYLE, width=800, height=320, show_dots=len(labels) <= 60, fill=False,
        x_label_rotation=30, show_minor_x_labels=False, js=[], title=title,
        disable_xml_declaration=False, truncate_label=12,
    )  # fmt: skip
    chart.x_labels = list(labels)
    chart.x_labels_major = list(labels)[:: max(1, len(labels) // 8)]
    for name, values in series.items():
        chart.add(name, list(values))
    return bytes(chart.render())


def bar_chart(title: str, labels: Sequence[str], series: dict[str, Sequence[int]]) -> bytes:
    chart = pygal.Bar(
        style=STYLE, width=800, height=320, x_label_rotation=30, js=[], title=title,
        truncate_label=18,
    )  # fmt: skip
    chart.x_labels = list(labels)
    for name, values in series.items():
        chart.add(name, list(values))
    return bytes(chart.render())


def svg_response(svg: bytes) -> HttpResponse:
    response = HttpResponse(svg, content_type="image/svg+xml")
    response["Cache-Control"] = "private, max-age=60"
    return response
