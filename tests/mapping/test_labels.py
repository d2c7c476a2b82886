"""Agents' decisions become labels of what the engine had said; the report reads them from the database."""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner

from supportlens.mapping.labels import calibration_report
from tests.mapping.helpers import Batch, link_of, send

JANE = "jane@acme.io"
JOHN = "john@acme.io"


async def test_a_decision_keeps_what_the_engine_had_said(signed_in, sessionmaker):
    async with sessionmaker() as db:
        await send(db, Batch("dev1", "login", 0, 10, ip="10.0.0.1", email=JANE))
        anon = await send(db, Batch("dev1", "anon", 3 * 24 * 60, 10, ip="10.9.9.9"))
        before = (await link_of(db, "dev1", "anon"))[JANE]
        engine_said = (before.mapping_method, before.confidence_score)
    assert engine_said[1] >= 0.5
    agent = await signed_in("agent")

    r = await agent.client.request(
        "DELETE",
        "/api/clarity/sessions/map",
        params={"sessionId": str(anon.id), "customerEmail": JANE, "reason": "John used the laptop"},
        headers=agent.headers(),
    )
    assert r.status_code == 200, r.text
    # Changing one's mind later keeps the engine's first prediction as what is judged.
    r = await agent.client.post(
        "/api/clarity/sessions/map",
        json={"sessionId": str(anon.id), "customerEmail": JANE},
        headers=agent.headers(),
    )
    assert r.status_code == 200, r.text
    # A link the engine never made: a miss.
    r = await agent.client.post(
        "/api/clarity/sessions/map",
        json={"sessionId": str(anon.id), "customerEmail": JOHN},
        headers=agent.headers(),
    )
    assert r.status_code == 200, r.text

    async with sessionmaker() as db:
        rows = await link_of(db, "dev1", "anon")
        assert (rows[JANE].auto_method, rows[JANE].auto_confidence) == engine_said
        assert rows[JANE].manual_decision == "link" and rows[JANE].decided_at is not None
        assert rows[JOHN].auto_method is None and rows[JOHN].auto_confidence is None
        report = await calibration_report(db, threshold=0.5)
    assert report.labels == 1 and report.missed == 1
    (method,) = report.listed_by_method
    assert (method.method, method.labels, method.confirmed) == (engine_said[0], 1, 1)


async def test_admins_see_the_report_and_others_do_not(signed_in, sessionmaker):
    async with sessionmaker() as db:
        await send(db, Batch("dev2", "login", 0, 10, ip="10.0.0.2", email=JANE))
        anon = await send(db, Batch("dev2", "anon", 24 * 60, 10, ip="10.9.9.8"))
    agent = await signed_in("agent")
    r = await agent.client.request(
        "DELETE",
        "/api/clarity/sessions/map",
        params={"sessionId": str(anon.id), "customerEmail": JANE, "reason": "<b>not her</b>"},
        headers=agent.headers(),
    )
    assert r.status_code == 200
    assert (await agent.client.get("/admin/mapping")).status_code == 403
    assert (await agent.client.get("/api/admin/mapping/report")).status_code == 403

    admin = await signed_in("admin")
    page = await admin.client.get("/admin/mapping")
    assert page.status_code == 200
    assert "Link accuracy" in page.text and "0 of 1" in page.text
    assert JANE not in page.text  # figures only: no customer on this page
    body = (await admin.client.get("/api/admin/mapping/report")).json()
    assert body["labels"] == 1 and body["listedByMethod"][0]["confirmed"] == 0


async def test_the_command_prints_the_report(monkeypatch, database_url):
    from supportlens.cli import app as cli
    from supportlens.config import get_settings

    monkeypatch.setenv("SUPPORTLENS_DATABASE_URL", database_url)
    monkeypatch.setenv("SUPPORTLENS_SECRET_KEY", "test-secret-key-not-for-production")
    get_settings.cache_clear()
    try:
        # The command runs its own event loop: call it from a thread, away from the test's loop.
        result = await asyncio.to_thread(CliRunner().invoke, cli, ["mapping", "report"])
        assert result.exit_code == 0, result.output
        assert "Listed links (confidence >= threshold), by method:" in result.output
        result = await asyncio.to_thread(CliRunner().invoke, cli, ["mapping", "report", "--json"])
        assert result.exit_code == 0 and '"threshold": 0.5' in result.output
    finally:
        get_settings.cache_clear()
