"""Extreme values for parameters: the edges of the calendar, of bigint and int64, of cursors and of text.

Shared by the property test over every agent route (test_extreme_params.py) and the schemathesis run.
"""

from __future__ import annotations

import base64
from datetime import date, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st


def sessions_cursor(raw: str) -> str:
    """A cursor in the sessions list's own encoding (base64 of `<start>|<session id>`)."""
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


# Values at the edges of what the types involved hold: days and instants at either end of the calendar
# (with the widest UTC offsets), integers past bigint and int64 both ways, cursors that decode to those
# instants or to nothing, and text that is long, empty or not text-like at all.
EXTREMES = [
    "9999-12-31",
    "0001-01-01",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59.999999+14:00",
    "0001-01-01T00:00:00+14:00",
    "0001-01-01T00:00:00-14:00",
    "1970-01-01T00:00:00Z",
    str(2**63),
    str(2**63 - 1),
    str(-(2**63) - 1),
    str(-(2**63)),
    "0",
    "-1",
    "9" * 4400,
    "1e308",
    "NaN",
    "-inf",
    "",
    "x" * 5000,
    "%00",
    "\u202e\U0001f600",
    "00000000-0000-0000-0000-000000000000",
    sessions_cursor(f"0001-01-01T00:00:00+14:00|{'0' * 32}"),
    sessions_cursor(f"9999-12-31T23:59:59-14:00|{'f' * 32}"),
    sessions_cursor("garbage"),
    f"{2**63}.{'0' * 32}",
    f"-{2**63}.{'f' * 32}",
    f"{10**20}.{'0' * 32}",
    "not-a-cursor",
]


# Sent to every parameter of every route, each on its own: the values that broke a route before.
SHARPEST = [
    "9999-12-31",
    "0001-01-01",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    str(2**63),
    str(-(2**63) - 1),
    "9" * 4400,
    "",
    "x" * 5000,
    sessions_cursor(f"0001-01-01T00:00:00+14:00|{'0' * 32}"),
    sessions_cursor(f"9999-12-31T23:59:59-14:00|{'f' * 32}"),
    f"{2**63}.{'0' * 32}",
]


def extreme_values() -> Any:
    offsets = st.sampled_from([timezone(timedelta(hours=h)) for h in (-14, -12, 0, 12, 14)])
    return st.one_of(
        st.sampled_from(EXTREMES),
        st.integers(min_value=-(2**70), max_value=2**70).map(str),
        st.dates().map(date.isoformat),
        st.datetimes(timezones=offsets).map(datetime.isoformat),
        st.datetimes(timezones=offsets).map(lambda d: sessions_cursor(f"{d.isoformat()}|{'a' * 32}")),
        st.text(max_size=300),
    )


def extreme_days() -> Any:
    """Valid `format: date` strings, weighted to the ends of the calendar."""
    ends = st.sampled_from(["9999-12-31", "0001-01-01", "9998-12-31"])
    return st.one_of(ends, st.dates().map(date.isoformat))


def extreme_instants() -> Any:
    """Valid `format: date-time` strings, weighted to the ends of time with the widest offsets."""
    offsets = st.sampled_from([timezone(timedelta(hours=h)) for h in (-14, 0, 14)])
    return st.one_of(
        st.sampled_from(["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59Z"]),
        st.datetimes(timezones=offsets).map(datetime.isoformat),
    )
