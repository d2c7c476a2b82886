"""A short-lived cache of search answers per source and normalised query.

In-process (a TTL dict) by default; in Redis when `SUPPORTLENS_REDIS_URL` is set, so every replica shares
it. Keys are keyed hashes of the query, never the query itself. `await clear()` empties every cache of
this process (erasure calls it so an erased customer's data is not served from cache).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import weakref
from collections import OrderedDict
from typing import Any, Protocol

from supportlens.config import Settings

PREFIX = "supportlens:search:"
MAX_MEMORY_ENTRIES = 2000


class SearchCache(Protocol):
    ttl: int

    async def get(self, source: str, normalized: str) -> Any | None: ...

    async def set(self, source: str, normalized: str, value: Any) -> None: ...

    async def clear(self) -> None: ...

    async def aclose(self) -> None: ...


_caches: weakref.WeakSet[Any] = weakref.WeakSet()


def _key(secret: bytes, source: str, normalized: str) -> str:
    digest = hmac.new(secret, normalized.encode(), hashlib.sha256).hexdigest()[:40]
    return f"{PREFIX}{source}:{digest}"


class MemoryCache:
    def __init__(self, ttl: int, secret: bytes) -> None:
        self.ttl = ttl
        self._secret = secret
        self._data: OrderedDict[str, tuple[float, str]] = OrderedDict()
        _caches.add(self)

    async def get(self, source: str, normalized: str) -> Any | None:
        if self.ttl <= 0:
            return None
        key = _key(self._secret, source, normalized)
        hit = self._data.get(key)
        if hit is None:
            return None
        expires, value = hit
        if time.monotonic() >= expires:
            self._data.pop(key, None)
            return None
        return json.loads(value)

    async def set(self, source: str, normalized: str, value: Any) -> None:
        if self.ttl <= 0:
            return
        key = _key(self._secret, source, normalized)
        self._data[key] = (time.monotonic() + self.ttl, json.dumps(value))
        self._data.move_to_end(key)
        while len(self._data) > MAX_MEMORY_ENTRIES:
            self._data.popitem(last=False)

    async def clear(self) -> None:
        self._data.clear()

    async def aclose(self) -> None:
        self._data.clear()


class RedisCache:
    def __init__(self, ttl: int, secret: bytes, redis_url: str) -> None:
        from redis.asyncio import Redis

        self.ttl = ttl
        self._secret = secret
        self.redis = Redis.from_url(redis_url)
        _caches.add(self)

    async def get(self, source: str, normalized: str) -> Any | None:
        if self.ttl <= 0:
            return None
        raw = await self.redis.get(_key(self._secret, source, normalized))
        return json.loads(raw) if raw else None

    async def set(self, source: str, normalized: str, value: Any) -> None:
        if self.ttl <= 0:
            return
        await self.redis.set(_key(self._secret, source, normalized), json.dumps(value), ex=self.ttl)

    async def clear(self) -> None:
        keys = [k async for k in self.redis.scan_iter(match=f"{PREFIX}*", count=500)]
        for i in range(0, len(keys), 500):
            await self.redis.delete(*keys[i : i + 500])

    async def aclose(self) -> None:
        await self.redis.aclose()


def make_cache(settings: Settings) -> SearchCache:
    secret = settings.secret_key.get_secret_value().encode()
    if settings.redis_url:
        return RedisCache(settings.search_cache_seconds, secret, settings.redis_url)
    return MemoryCache(settings.search_cache_seconds, secret)


async def clear() -> None:
    """Empty every search cache of this process (and the shared Redis one, if any)."""
    for cache in list(_caches):
        await cache.clear()
