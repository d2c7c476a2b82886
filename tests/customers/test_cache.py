"""The search cache: TTL, hashed keys, Redis shared by replicas, and the module-level clear()."""

from __future__ import annotations

import asyncio
import uuid

from supportlens.customers import cache
from supportlens.customers.cache import PREFIX, MemoryCache, RedisCache

REDIS = "redis://127.0.0.1:6379/0"


async def test_memory_cache_expires_and_clears() -> None:
    c = MemoryCache(1, b"secret")
    await c.set("hubspot", "jane@acme.io", [{"id": "1"}])
    assert await c.get("hubspot", "jane@acme.io") == [{"id": "1"}]
    assert await c.get("dwolla", "jane@acme.io") is None  # per source
    await cache.clear()
    assert await c.get("hubspot", "jane@acme.io") is None
    await c.set("hubspot", "jane@acme.io", [1])
    await asyncio.sleep(1.05)
    assert await c.get("hubspot", "jane@acme.io") is None
    off = MemoryCache(0, b"secret")
    await off.set("hubspot", "x", [1])
    assert await off.get("hubspot", "x") is None


async def test_redis_cache_is_shared_by_replicas_and_keys_carry_no_pii() -> None:
    secret = uuid.uuid4().hex.encode()
    replica_a, replica_b = RedisCache(30, secret, REDIS), RedisCache(30, secret, REDIS)
    try:
        await replica_a.set("dwolla", "jane@acme.io", [{"customer": {"id": "d-1"}}])
        assert await replica_b.get("dwolla", "jane@acme.io") == [{"customer": {"id": "d-1"}}]
        keys = [k.decode() async for k in replica_a.redis.scan_iter(match=f"{PREFIX}*")]
        assert keys and not any("jane" in k or "acme" in k for k in keys)
        ttl = await replica_a.redis.ttl(keys[0])
        assert 0 < ttl <= 30
        await cache.clear()  # what erasure calls
        assert await replica_b.get("dwolla", "jane@acme.io") is None
    finally:
        await replica_a.aclose()
        await replica_b.aclose()
