"""429 with Retry-After: per site key and per client IP (the `limits` library, in memory or Redis)."""

from __future__ import annotations

import httpx2
import pytest
from sqlalchemy import func, select

from supportlens.app import create_app
from supportlens.sessions.models import SessionEvent
from tests.support.browsers import BROWSER
from tests.support.ingest import batch, event, headers

URL = "/api/ingest/v1/events"


async def _client(settings_factory, ip: str = "198.51.100.7", **limits):
    app = create_app(settings_factory(**limits))
    ctx = app.router.lifespan_context(app)
    await ctx.__aenter__()
    transport = httpx2.ASGITransport(app=app, client=(ip, 40000))
    return app, ctx, httpx2.AsyncClient(headers=BROWSER, transport=transport, base_url="http://testserver")


@pytest.mark.parametrize(
    ("limits", "detail"),
    [
        ({"ingest_rate_limit_per_site": "3/minute", "ingest_rate_limit_per_ip": "1000/minute"}, "site key"),
        ({"ingest_rate_limit_per_site": "1000/minute", "ingest_rate_limit_per_ip": "3/minute"}, "address"),
    ],
)
async def test_rate_limited_with_retry_after(settings_factory, engine, db, site_key, limits, detail):
    _, ctx, client = await _client(settings_factory, **limits)
    try:
        codes = []
        for _ in range(4):
            r = await client.post(URL, json=batch(site_key, [event()]), headers=headers())
            codes.append(r.status_code)
        assert codes == [202, 202, 202, 429]
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert detail in r.json()["detail"]
        assert int(await db.scalar(select(func.count()).select_from(SessionEvent))) == 3
    finally:
        await client.aclose()
        await ctx.__aexit__(None, None, None)


async def test_limits_shared_through_redis(settings_factory, engine, site_key):
    """Two app instances (replicas) share one budget when redis_url is set."""
    import uuid

    import redis.asyncio as aioredis

    r = aioredis.from_url("redis://127.0.0.1:6379/0")
    try:
        await r.ping()
    except Exception:
        pytest.skip("no Redis on 127.0.0.1:6379")
    finally:
        await r.aclose()
    ip = f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"
    opts = {"redis_url": "redis://127.0.0.1:6379/0", "ingest_rate_limit_per_ip": "2/hour"}
    (_, c1, one), (_, c2, two) = (
        await _client(settings_factory, ip, **opts),
        await _client(settings_factory, ip, **opts),
    )
    try:
        # a fresh key space per run: the IP is random, limits last an hour
        assert (await one.post(URL, json=batch(site_key, [event()]), headers=headers())).status_code == 202
        assert (await two.post(URL, json=batch(site_key, [event()]), headers=headers())).status_code == 202
        third = await one.post(URL, json=batch(site_key, [event()]), headers=headers())
        assert third.status_code == 429 and int(third.headers["retry-after"]) > 0
    finally:
        for c, ctx in ((one, c1), (two, c2)):
            await c.aclose()
            await ctx.__aexit__(None, None, None)
