"""Cells of the CSV files Tessera exports, safe to open in a spreadsheet."""

from __future__ import annotations

from typing import Any


def safe_cell(value: Any) -> str:
    """A cell as text; one a spreadsheet would run as a formula is quoted with ' first."""
    text = "" if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
