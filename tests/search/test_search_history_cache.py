"""Search bookkeeping: an audit row per search, the per-agent history, and the cache with refresh."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from supportlens.audit.models import AuditEntry
from supportlens.customers import cache
from supportlens.customers.query import parse_query
from supportlens.search import history
from supportlens.search.models import SearchHistory
from tests.integrations.sims import Sims


async def test_every_search_is_audited_without_pii(signed_in, db) -> None:
    agent = await signed_in("agent")
    for q in ("jane@acme.io", "Robert Chen"):
        assert (await agent.client.get("/api/search", params={"q": q})).status_code == 200
    rows = (
        (await db.execute(select(AuditEntry).where(AuditEntry.action == "customer.search"))).scalars().all()
    )
    assert len(rows) == 2
    for row in rows:
        assert row.actor_id == agent.agent.id
        assert row.target.startswith("cust_")
        flat = f"{row.target} {row.detail}".lower()
        assert "jane" not in flat and "robert" not in flat and "acme" not in flat
        assert row.detail["via"] == "api"
    assert {r.detail["kind"] for r in rows} == {"email", "name"}


async def test_history_last_20_newest_first_rerun_and_clear(signed_in, settings_factory) -> None:
    agent = await signed_in("agent")
    other = await signed_in("admin")
    for q in ("jane@acme.io", "chen", "JANE@acme.io"):
        await agent.client.get("/api/search", params={"q": q})
    items = (await agent.client.get("/api/search/history")).json()["items"]
    assert [i["query"] for i in items] == ["JANE@acme.io", "chen"]  # a repeat moves to the top
    assert items[0]["kind"] == "email" and items[0]["resultCounts"]["hubspot"] == 1
    assert (await other.client.get("/api/search/history")).json()["items"] == []
    # Only the last 20 are kept (fill through the page route, which records history without upstream calls)
    for n in range(25):
        await agent.client.get("/", params={"q": f"Person {n}"}, headers={"Accept": "text/html"})
    items = (await agent.client.get("/api/search/history")).json()["items"]
    assert len(items) == 20 and items[0]["query"] == "Person 24"
    page = await agent.client.get("/", headers={"Accept": "text/html"})
    assert 'href="/?q=Person%2024"' in page.text  # re-run links
    r = await agent.client.delete("/api/search/history", headers=agent.headers())
    assert r.status_code == 204
    assert (await agent.client.get("/api/search/history")).json()["items"] == []
    no_csrf = await agent.client.delete("/api/search/history")
    assert no_csrf.status_code == 403


async def test_cache_serves_repeats_and_refresh_bypasses_it(signed_in, settings_factory, sims: Sims) -> None:
    agent = await signed_in("agent")
    app_cache = agent.client._transport.app.state.customer_directory.cache  # type: ignore[attr-defined]
    app_cache.ttl = 60
    first = (await agent.client.get("/api/search", params={"q": "jane@acme.io"})).json()
    assert first["hubspot"]["cached"] is False
    calls = (sims.hubspot.count(), sims.dwolla.count())
    second = (await agent.client.get("/api/search", params={"q": " JANE@acme.io"})).json()
    assert second["hubspot"]["cached"] is True and second["dwolla"]["cached"] is True
    assert second["hubspot"]["items"] == first["hubspot"]["items"]
    assert (sims.hubspot.count(), sims.dwolla.count()) == calls  # no upstream call at all
    fresh = (await agent.client.get("/api/search", params={"q": "jane@acme.io", "refresh": "1"})).json()
    assert fresh["hubspot"]["cached"] is False and fresh["dwolla"]["cached"] is False
    assert sims.hubspot.count() > calls[0] and sims.dwolla.count() > calls[1]
    await cache.clear()
    again = (await agent.client.get("/api/search", params={"q": "jane@acme.io"})).json()
    assert again["hubspot"]["cached"] is False


async def test_one_agents_searches_recorded_at_once_all_land(signed_in, sessionmaker) -> None:
    # 30 searches of one agent recorded concurrently, each in its own transaction (several tabs, or
    # an API token shared by many clients): none fails or waits on another, the history shows the
    # newest 20, and the next search trims the table back to what is shown.
    agent = await signed_in("agent")
    queries = [parse_query(f"jane{i}@acme.io") for i in range(30)]

    async def one(q) -> None:
        async with sessionmaker() as s:
            await history.record(s, agent.agent.id, q, {"hubspot": 1})

    await asyncio.gather(*(one(q) for q in queries))
    async with sessionmaker() as s:
        assert len(await history.recent(s, agent.agent.id)) == history.SHOWN
        await history.record(s, agent.agent.id, parse_query("jane@acme.io"), {"hubspot": 1})
        kept = (await s.scalars(select(SearchHistory).where(SearchHistory.agent_id == agent.agent.id))).all()
    assert len(kept) == history.SHOWN
    assert "jane@acme.io" in {row.normalized_query for row in kept}


async def test_the_same_query_recorded_at_once_keeps_one_row(signed_in, sessionmaker) -> None:
    agent = await signed_in("agent")
    query = parse_query("Jane@Acme.io")

    async def one(n: int) -> None:
        async with sessionmaker() as s:
            await history.record(s, agent.agent.id, query, {"hubspot": n})

    await asyncio.gather(*(one(n) for n in range(10)))
    async with sessionmaker() as s:
        kept = (await s.scalars(select(SearchHistory).where(SearchHistory.agent_id == agent.agent.id))).all()
    assert [row.normalized_query for row in kept] == ["jane@acme.io"]
