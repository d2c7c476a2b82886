"""Client-side rate limits under the vendors' own: in-process (aiolimiter) or shared by every replica
through Redis (the `limits` library's moving window)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from aiolimiter import AsyncLimiter

from supportlens.integrations.errors import UpstreamRateLimited


@dataclass(frozen=True)
class RateLimit:
    """At most `requests` calls in any window of `seconds` seconds."""

    requests: int
    seconds: float

    def describe(self) -> str:
        return f"{self.requests}/{self.seconds:g}s"


class Limiter(Protocol):
    async def acquire(self, bucket: str) -> None: ...

    async def aclose(self) -> None: ...


class LocalLimiter:
    """In-process limits with aiolimiter (a leaky bucket). A bucket of capacity C draining at r/s lets
    through at most C + r*T calls in any window T, so C + r*seconds <= requests keeps every window of
    `seconds` at or under `requests`.

    With `pace_only`, Redis keeps the vendor's limit for every replica and this bucket paces one
    process's calls. A window of a second or less (HubSpot's 5 searches per second) drains at twice the
    vendor's rate: 100 ms between two searches of a process instead of the 255 ms that enforcing the
    limit alone needs, still more than the jitter of the trip to the vendor, which is what must keep
    the Redis window's stamps apart. Longer windows keep the vendor-rate pace: a process that spent a
    10 s window in its first seconds would stall its callers for the rest of it."""

    def __init__(
        self, vendor: str, limits: Mapping[str, RateLimit], wait_seconds: float, *, pace_only: bool = False
    ) -> None:
        self.vendor = vendor
        self.wait_seconds = wait_seconds
        self._limiters: dict[str, AsyncLimiter] = {}
        for name, lim in limits.items():
            capacity = max(1, lim.requests // 10)
            drain_per_second = max(lim.requests - capacity, 1) / lim.seconds * 0.98
            if pace_only and lim.seconds <= 1:
                drain_per_second = 2 * lim.requests / lim.seconds
            self._limiters[name] = AsyncLimiter(capacity, capacity / drain_per_second)

    async def acquire(self, bucket: str) -> None:
        limiter = self._limiters.get(bucket)
        if limiter is None:
            return
        try:
            await asyncio.wait_for(limiter.acquire(), self.wait_seconds)
        except TimeoutError:
            raise UpstreamRateLimited(
                self.vendor, f"client-side rate limit ({bucket}) had no room in time", status=None
            ) from None

    async def aclose(self) -> None:
        return None


class RedisLimiter:
    """Limits shared by every replica: a moving window kept in Redis by the `limits` library."""

    def __init__(
        self, vendor: str, limits: Mapping[str, RateLimit], wait_seconds: float, redis_url: str
    ) -> None:
        from limits import RateLimitItemPerSecond
        from limits.aio.strategies import MovingWindowRateLimiter
        from limits.storage import storage_from_string

        self.vendor = vendor
        self.wait_seconds = wait_seconds
        url = redis_url if redis_url.startswith("async+") else f"async+{redis_url}"
        self.storage = storage_from_string(url, implementation="redispy")
        self.strategy = MovingWindowRateLimiter(self.storage)
        self._warm = False
        # One below the vendor's figure: an entry is stamped before its round trip to Redis and to the
        # vendor, so the vendor's window edge can fall a few milliseconds away from ours.
        self.items = {
            name: RateLimitItemPerSecond(max(1, lim.requests - 1), max(1, round(lim.seconds)))
            for name, lim in limits.items()
        }

    async def acquire(self, bucket: str) -> None:
        item = self.items.get(bucket)
        if item is None:
            return
        if not self._warm:
            # Connect (and load the script) before the first hit: an entry's timestamp is taken before
            # the Redis round trip, so a slow first round trip would let the next window open early.
            await self.storage.check()  # type: ignore[misc]
            await self.strategy.get_window_stats(item, "supportlens", self.vendor, bucket)
            self._warm = True
        deadline = time.monotonic() + self.wait_seconds
        while not await self.strategy.hit(item, "supportlens", self.vendor, bucket):
            stats = await self.strategy.get_window_stats(item, "supportlens", self.vendor, bucket)
            pause = min(max(stats.reset_time - time.time(), 0.01), 0.25)
            if time.monotonic() + pause > deadline:
                raise UpstreamRateLimited(
                    self.vendor, f"client-side rate limit ({bucket}) had no room in time", status=None
                )
            await asyncio.sleep(pause)

    async def aclose(self) -> None:
        return None


class SharedLimiter:
    """Replicas share the Redis window; inside one process calls are also spaced by the local limiter
    (see `LocalLimiter`'s `pace_only`)."""

    def __init__(self, local: LocalLimiter, shared: RedisLimiter) -> None:
        self.local = local
        self.shared = shared

    async def acquire(self, bucket: str) -> None:
        await self.local.acquire(bucket)
        await self.shared.acquire(bucket)

    async def aclose(self) -> None:
        await self.shared.aclose()


def make_limiter(
    vendor: str, limits: Mapping[str, RateLimit], wait_seconds: float, redis_url: str | None
) -> Limiter:
    """In-process limits, or limits shared by every replica through Redis when a URL is given."""
    if redis_url:
        return SharedLimiter(
            LocalLimiter(vendor, limits, wait_seconds, pace_only=True),
            RedisLimiter(vendor, limits, wait_seconds, redis_url),
        )
    return LocalLimiter(vendor, limits, wait_seconds)
