"""CSV answers (exports, the weekly report): a cell a spreadsheet would run as a formula is quoted."""

from __future__ import annotations

from typing import Any

CSV_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> Any:
    """Neutralise spreadsheet formulas (CSV injection): text starting with = + - @ tab or CR gets a quote."""
    if isinstance(value, str) and value.startswith(CSV_DANGEROUS):
        return "'" + value
    return value
