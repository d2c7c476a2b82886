"""Ingest rate limits per site key and per client IP, with the `limits` library.

In memory per process by default; shared by every replica through Redis when settings.redis_url is set.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string

from supportlens.config import Settings


class IngestLimiter:
    def __init__(self, settings: Settings) -> None:
        if settings.redis_url:
            uri = settings.redis_url
            uri = uri if uri.startswith("async+") else "async+" + uri
            storage = storage_from_string(uri)
        else:
            storage = storage_from_string("async+memory://")
        self.limiter = FixedWindowRateLimiter(storage)
        self.per_site: RateLimitItem = parse(settings.ingest_rate_limit_per_site)
        self.per_ip: RateLimitItem = parse(settings.ingest_rate_limit_per_ip)

    async def _hit(self, item: RateLimitItem, *ids: str) -> int | None:
        """None when allowed, else the seconds to wait (for Retry-After)."""
        if await self.limiter.hit(item, "ingest", *ids):
            return None
        stats = await self.limiter.get_window_stats(item, "ingest", *ids)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def check_ip(self, ip: str) -> int | None:
        return await self._hit(self.per_ip, "ip", ip)

    async def check_site(self, site_id: str) -> int | None:
        return await self._hit(self.per_site, "site", site_id)
