"""Extreme dates, integers and cursors in agents' query parameters: a 400 naming the field, never a 5xx.

The cases reported in issue #24 (finding 5), each answered before this fix with a 500 (or, for the audit
export, a 200 whose body was cut off mid-stream).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from tests.investigation.seed import seed_checkout_session


def sessions_cursor(raw: str) -> str:
    """A cursor in the sessions list's own encoding (base64 of `<start>|<session id>`)."""
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


REPORTED = [
    ("/api/customers/jane@acme.io/journey", {"to": "9999-12-31"}, "to"),
    ("/customers/jane@acme.io/journey", {"to": "9999-12-31"}, "to"),
    ("/admin/audit", {"to": "9999-12-31"}, "to"),
    ("/admin/audit/export", {"to": "9999-12-31"}, "to"),
    ("/admin/audit/export", {"to": "9999-12-31", "format": "json"}, "to"),
    ("/admin/audit", {"before": str(2**63)}, "before"),
    ("/api/clarity/sessions/{sid}/events", {"after": "9999-12-31T23:59:59-14:00"}, "after"),
    ("/api/clarity/sessions/{sid}/events", {"after": "0001-01-01T00:00:00+14:00"}, "after"),
    (
        "/api/clarity/sessions",
        {"customer": "jane@acme.io", "before": sessions_cursor(f"0001-01-01T00:00:00+14:00|{'0' * 32}")},
        "before",
    ),
    (
        "/partials/sessions",
        {"customer": "jane@acme.io", "before": sessions_cursor(f"9999-12-31T23:59:59-14:00|{'0' * 32}")},
        "before",
    ),
]


@pytest.mark.parametrize(("path", "query", "field"), REPORTED)
async def test_reported_extreme_values_are_a_400_naming_the_field(
    signed_in, sessionmaker, path, query, field
):
    admin = await signed_in("admin")
    seeded = await seed_checkout_session(sessionmaker)
    resp = await admin.client.get(
        path.format(sid=seeded.id), params=query, headers={"Accept": "application/json"}
    )
    assert resp.status_code == 400, (resp.status_code, resp.text[:300])
    problem = resp.json()
    assert problem["field"] == field, problem
    assert field in problem["detail"]


async def test_dates_inside_the_bounds_still_work(signed_in, sessionmaker):
    admin = await signed_in("admin")
    await seed_checkout_session(sessionmaker)
    year = datetime.now(UTC).year
    for path in ("/admin/audit", "/admin/audit/export", "/api/customers/jane@acme.io/journey"):
        resp = await admin.client.get(path, params={"from": f"{year - 1}-01-01", "to": f"{year + 1}-12-31"})
        assert resp.status_code == 200, (path, resp.text[:300])
