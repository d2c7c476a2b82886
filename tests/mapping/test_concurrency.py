"""Batches arriving at once, as browsers send them, while the mapping worker runs: every one is stored,
no two deadlock, and once the queue is drained the links are those the scorer gives the whole world."""

from __future__ import annotations

import asyncio
import zlib
from collections import defaultdict
from typing import Any

import httpx2
import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

import supportlens.capture.views as ingest_views
from supportlens.capture import sites
from supportlens.mapping import scoring
from supportlens.mapping.evidence import gather
from supportlens.sessions.models import SessionCustomerMapping, UserSession
from supportlens_sandbox.mapping_world import build_world, offline_facts
from tests.support.browsers import BROWSER

ORIGIN = "https://shop.example"
LANES = 6


@pytest.fixture
def settings(settings_factory):
    return settings_factory(
        ingest_max_event_age_days=40,  # a world spans 30 days
        ingest_rate_limit_per_site="100000/second",
        ingest_rate_limit_per_ip="100000/second",
    )


def _batches(s: Any, key: str) -> list[dict[str, Any]]:
    from bench.mapping import batches_of  # the benchmark's own wire batches, so both send the same

    return batches_of(s, key)


def _expected(world: Any) -> dict[tuple[str, str], float]:
    """(session, e-mail) -> confidence, from the scorer over the facts of the whole world."""
    out = {(s.session, s.truth): 1.0 for s in world.sessions if s.signed_in and s.truth}
    for s, facts in offline_facts(world):
        for email, scored in scoring.score(gather(facts)).items():
            if scored.confidence >= scoring.STORE_FLOOR:
                out[(s.session, email)] = scored.confidence
    return out


async def test_batches_sent_at_once_are_all_stored_without_deadlock_and_link_as_offline(
    app, db, monkeypatch, worker
):
    world = build_world(seed=11, customers=60)
    _, key = await sites.create_site(db, name="Shop", origins=[ORIGIN], clarity_project_id="p1")
    await db.commit()
    deadlocks: list[str] = []
    real_ingest = ingest_views.ingest_batch

    async def watched(*args: Any, **kwargs: Any) -> Any:
        try:
            return await real_ingest(*args, **kwargs)
        except DBAPIError as exc:
            if "deadlock" in str(exc.orig):
                deadlocks.append(str(exc.orig))
            raise

    monkeypatch.setattr(ingest_views, "ingest_batch", watched)

    # Batches of one browser stay in order on one lane; the lanes run at once, each batch from its
    # session's own client address.
    lanes: dict[int, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    items = []
    for s in world.sessions:
        span = (s.end - s.start) / max(1, s.batches)
        for i, body in enumerate(_batches(s, key)):
            items.append((s.start + span * (i + 1), s.session, s.ip, s.device, body))
    for _, _, ip, device, body in sorted(items, key=lambda x: (x[0], x[1])):
        lanes[zlib.crc32(device.encode()) % LANES].append((ip, body))
    clients: dict[str, httpx2.AsyncClient] = {}

    def client_for(ip: str) -> httpx2.AsyncClient:
        if ip not in clients:
            transport = httpx2.ASGITransport(app=app, client=(ip, 50000))
            clients[ip] = httpx2.AsyncClient(
                headers=BROWSER, transport=transport, base_url="http://testserver"
            )
        return clients[ip]

    statuses: list[int] = []

    async def lane(work: list[tuple[str, dict[str, Any]]]) -> None:
        for ip, body in work:
            r = await client_for(ip).post("/api/ingest/v1/events", json=body, headers={"Origin": ORIGIN})
            statuses.append(r.status_code)

    await asyncio.gather(*(lane(work) for work in lanes.values()))
    for c in clients.values():
        await c.aclose()

    assert statuses.count(202) == len(items), sorted(set(statuses))
    assert deadlocks == []
    await worker.drained(within=300)  # ~470 batches, mapped one job at a time on a shared machine
    db.expire_all()
    rows = (
        await db.execute(
            select(
                UserSession.clarity_session_id,
                SessionCustomerMapping.customer_email,
                SessionCustomerMapping.confidence_score,
            ).join(UserSession, UserSession.id == SessionCustomerMapping.session_id)
        )
    ).all()
    stored = {(sid, email): conf for sid, email, conf in rows}
    expected = _expected(world)
    assert stored.keys() == expected.keys()
    assert all(abs(stored[k] - expected[k]) < 1e-4 for k in expected)
