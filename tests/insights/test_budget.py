"""The daily budget of 10 Data Export calls: kept in the database, shared by replicas, never exceeded."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from supportlens.db.engine import make_engine, make_sessionmaker
from supportlens.insights import service
from supportlens.insights.models import ClarityConnection, ClaritySnapshot
from tests.insights.support import PROJECT, running_simulator


@pytest.fixture
def sim():
    with running_simulator() as s:
        yield s


async def test_the_eleventh_call_of_a_day_is_never_sent(sim, settings_factory, sessionmaker):
    settings = settings_factory(**sim.settings())
    results = []
    for _ in range(11):
        results.append(
            await service.pull_insights(
                sessionmaker, settings, schedule="url_device", dimensions=("URL", "Device")
            )
        )
    assert [r.outcome for r in results[:10]] == ["ok"] * 10
    assert results[10].outcome == "budget_exhausted"
    assert sim.state.export_requests == 10  # counted at the simulator: the 11th never left
    async with sessionmaker() as db:
        assert await service.calls_used_today(db, PROJECT) == 10
        snaps = (await db.scalars(select(ClaritySnapshot))).all()
        assert len(snaps) == 10 and all(s.metric_count >= 8 and s.row_count > 0 for s in snaps)
        conn = await db.get(ClarityConnection, PROJECT)
        assert conn.status == "ok" and "Not sent" in conn.last_error


async def test_two_app_processes_share_the_budget(sim, settings_factory, engine):
    """Two apps (own engines and connection pools) pull at once against the same database."""
    settings = settings_factory(**sim.settings())
    engines = [make_engine(settings), make_engine(settings)]
    makers = [make_sessionmaker(e) for e in engines]
    try:
        pulls = [
            service.pull_insights(makers[i % 2], settings, schedule="traffic", dimensions=())
            for i in range(16)
        ]
        results = await asyncio.gather(*pulls)
    finally:
        for e in engines:
            await e.dispose()
    outcomes = [r.outcome for r in results]
    assert outcomes.count("ok") == 10
    assert outcomes.count("budget_exhausted") == 6
    assert sim.state.export_requests == 10


async def test_unauthorized_forbidden_and_quota_become_a_visible_status(sim, settings_factory, sessionmaker):
    bad = settings_factory(**sim.settings(clarity_api_token="expired-token"))
    result = await service.pull_insights(sessionmaker, bad, schedule="traffic", dimensions=())
    assert result.outcome == "unauthorized"
    async with sessionmaker() as db:
        conn = await db.get(ClarityConnection, PROJECT)
        assert (conn.status, conn.last_status_code) == ("unauthorized", 401)
        assert "401" in conn.last_error
    sim.state.forbidden_tokens.add("other-project")
    forbidden = settings_factory(**sim.settings(clarity_api_token="other-project"))
    assert (
        await service.pull_insights(sessionmaker, forbidden, schedule="traffic", dimensions=())
    ).outcome == ("forbidden")
    # Another client of the same project spent Clarity's quota: Clarity answers 429.
    sim.state.export_calls = {service.today().isoformat(): 10}
    good = settings_factory(**sim.settings())
    result = await service.pull_insights(sessionmaker, good, schedule="traffic", dimensions=())
    assert result.outcome == "quota_exhausted"
    async with sessionmaker() as db:
        conn = await db.get(ClarityConnection, PROJECT)
        assert (conn.status, conn.last_status_code) == ("quota_exhausted", 429)
        # the rest of today's budget is spent, so nothing else is sent today
        assert await service.calls_used_today(db, PROJECT) == 10
    before = sim.state.export_requests
    assert (await service.pull_insights(sessionmaker, good, schedule="traffic", dimensions=())).outcome == (
        "budget_exhausted"
    )
    assert sim.state.export_requests == before


async def test_not_configured_sends_nothing(sim, settings_factory, sessionmaker):
    settings = settings_factory(**sim.settings(clarity_api_token=""))
    result = await service.pull_insights(sessionmaker, settings, schedule="traffic", dimensions=())
    assert result.outcome == "not_configured" and sim.state.export_requests == 0


async def test_unreachable_clarity_is_an_error_status_not_a_crash(settings_factory, sessionmaker):
    settings = settings_factory(
        clarity_project_id=PROJECT, clarity_api_token="t", clarity_export_base_url="http://127.0.0.1:9"
    )
    result = await service.pull_insights(sessionmaker, settings, schedule="traffic", dimensions=())
    assert result.outcome == "error" and "could not be reached" in result.message
    async with sessionmaker() as db:
        assert (await db.get(ClarityConnection, PROJECT)).status == "error"


async def test_two_app_servers_pressing_pull_now_together_send_at_most_ten(sim, settings_factory, engine):
    """Two separate apps (own engines) behind HTTP, one admin pressing "pull now" on both at once."""
    import httpx2

    from supportlens.app import create_app
    from tests.support.agents import make_agent, sign_in

    settings = settings_factory(**sim.settings())
    apps = [create_app(settings), create_app(settings)]
    await make_agent(make_sessionmaker(engine), "admin", email="ops@example.com")
    async with apps[0].router.lifespan_context(apps[0]), apps[1].router.lifespan_context(apps[1]):
        clients = [
            httpx2.AsyncClient(transport=httpx2.ASGITransport(app=a), base_url="http://testserver")
            for a in apps
        ]
        csrf = await sign_in(clients[0], "ops@example.com")
        clients[1].cookies = clients[0].cookies  # the same agent session, served by the other replica
        presses = [
            clients[i % 2].post(
                "/admin/clarity/pull", data={"schedule": "traffic"}, headers={"X-CSRF-Token": csrf}
            )
            for i in range(14)
        ]
        answers = await asyncio.gather(*presses)
        for c in clients:
            await c.aclose()
    results = [a.headers["location"].split("pulled=")[1] for a in answers]
    assert results.count("ok") == 10 and results.count("budget_exhausted") == 4
    assert sim.state.export_requests == 10
