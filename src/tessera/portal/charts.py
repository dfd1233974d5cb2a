"""Charts drawn on the server as SVG (pygal): no chart script, nothing from a CDN.

Each chart is its own response shown with ``<img>``: pygal's SVG carries a ``<style>`` and
a ``<script>`` that a page's Content-Security-Policy (rightly) refuses inline. As an image
it runs no script at all, so the script is dropped and the chart's response alone allows
inline style (``CHART_POLICY``). Its numbers are in a table beside it too, for people who
cannot see it.
"""

from __future__ import annotations

import re

from django.http import HttpResponse
from pygal.graph.graph import Graph
from pygal.style import Style

# Pico's text colour and series colours that keep 4.5:1 against white.
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
# Only a chart's response allows inline style; it still allows no script of any kind.
CHART_POLICY = {"style-src": ["'self'", "'unsafe-inline'"], "script-src": ["'none'"]}


def svg(chart: Graph) -> bytes:
    """The chart as an SVG document, without pygal's script."""
    return SCRIPT.sub("", chart.render(is_unicode=True)).encode("utf-8")


def svg_response(body: bytes) -> HttpResponse:
    response = HttpResponse(body, content_type="image/svg+xml")
    # Figures move all day; a minute's staleness is fine and spares a reload's queries.
    response["Cache-Control"] = "private, max-age=60"
    return response
