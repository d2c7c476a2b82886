"""The Clarity simulator speaks the documented wire format and enforces the documented limits."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import httpx2
import pytest

from tests.insights.support import TOKEN, running_simulator

EXPORT = "/export-data/api/v1/project-live-insights"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def sim():
    with running_simulator(site_origin="https://shop.example", forbidden_tokens={"other-project"}) as s:
        yield s


async def test_export_auth_validation_shape_and_quota(sim):
    async with httpx2.AsyncClient(base_url=sim.url) as http:
        assert (await http.get(EXPORT, params={"numOfDays": 1})).status_code == 401
        bad = await http.get(EXPORT, params={"numOfDays": 1}, headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
        other = await http.get(
            EXPORT, params={"numOfDays": 1}, headers={"Authorization": "Bearer other-project"}
        )
        assert other.status_code == 403
        for days in ("0", "4", "x"):
            assert (await http.get(EXPORT, params={"numOfDays": days}, headers=AUTH)).status_code == 400
        bad_dim = await http.get(EXPORT, params={"numOfDays": 1, "dimension1": "Planet"}, headers=AUTH)
        assert bad_dim.status_code == 400
        ok = await http.get(
            EXPORT, params={"numOfDays": 2, "dimension1": "URL", "dimension2": "Device"}, headers=AUTH
        )
        assert ok.status_code == 200
        body = ok.json()
        assert isinstance(body, list) and {"metricName", "information"} <= set(body[0])
        names = [b["metricName"] for b in body]
        assert "Traffic" in names and "RageClickCount" in names and "DeadClickCount" in names
        traffic = next(b for b in body if b["metricName"] == "Traffic")["information"]
        assert isinstance(traffic[0]["totalSessionCount"], str) and traffic[0]["totalSessionCount"].isdigit()
        assert "distantUserCount" in traffic[0] and {"URL", "Device"} <= set(traffic[0])
        rage = next(b for b in body if b["metricName"] == "RageClickCount")["information"]
        pay = [r for r in rage if r["URL"] == "https://shop.example/pay"]
        assert len(pay) == 3 and all(r["sessionsWithMetricPercentage"] > 10 for r in pay)
        # same seed, same figures
        again = await http.get(
            EXPORT, params={"numOfDays": 2, "dimension1": "URL", "dimension2": "Device"}, headers=AUTH
        )
        assert again.json() == body
        for _ in range(8):
            assert (await http.get(EXPORT, params={"numOfDays": 1}, headers=AUTH)).status_code == 200
        assert (await http.get(EXPORT, params={"numOfDays": 1}, headers=AUTH)).status_code == 429
    day = datetime.now(UTC).date().isoformat()
    assert sim.state.export_calls[day] == 10


async def test_recordings_need_a_date_filter_and_list_uploaded_sessions(sim):
    now = datetime.now(UTC)
    window = {
        "start": (now - timedelta(hours=1)).isoformat(),
        "end": (now + timedelta(minutes=5)).isoformat(),
    }
    payload = {
        "e": [
            "0.8.40",
            1,
            0,
            1200,
            "demo123",
            "1oh3r9k",
            "1o9gaa3",
            2,
            0,
            0,
            0,
            "https://shop.example/pay",
        ],
        "a": [[10, 9, 100, 200], [20, 9, 110, 210], [30, 4, 1]],
        "p": [],
    }
    async with httpx2.AsyncClient(base_url=sim.url) as http:
        assert (await http.post("/mcp/recordings/sample", json={"count": 10})).status_code == 401
        missing = await http.post(
            "/mcp/recordings/sample", json={"sortBy": 0, "count": 10, "filters": {}}, headers=AUTH
        )
        assert missing.status_code == 500
        up = await http.post(
            "/collect",
            content=gzip.compress(json.dumps(payload).encode()),
            headers={"Accept": "application/x-clarity-gzip"},
        )
        assert up.status_code == 204
        assert (await http.post("/collect", content=b"garbage")).status_code == 204  # never 4xx
        resp = await http.post(
            "/mcp/recordings/sample",
            json={
                "sortBy": 0,
                "start": window["start"],
                "end": window["end"],
                "count": 10,
                "filters": {"date": window},
            },
            headers=AUTH,
        )
    assert resp.status_code == 200
    [item] = resp.json()
    assert item["link"] == "https://clarity.microsoft.com/player/demo123/1oh3r9k/1o9gaa3"
    assert item["sessionClickCount"] == 2 and item["pagesCount"] == 1
    assert item["timeline"][0]["url"] == "https://shop.example/pay"
    assert "minutes and" in item["totalDuration"]
