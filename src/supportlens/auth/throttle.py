"""Login throttling: lock an account, or an IP address, after repeated failed sign-ins.

Failures are counted in a moving window (the `limits` library): M failures of one account within N
minutes lock that account until the oldest failure leaves the window, i.e. for up to N minutes; an IP
address gets a larger budget (credential stuffing spreads over many accounts). With `redis_url` set the
counters live in Redis, so every replica sees the same lock. A lock is also written to
`agents.locked_until`, so administrators see it and it survives a restart of the memory store.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from supportlens.config import Settings
from supportlens.db.base import utcnow


@dataclass(frozen=True)
class Lock:
    scope: str  # "account" | "ip"
    until: datetime

    def minutes_left(self) -> int:
        return max(1, math.ceil((self.until - utcnow()).total_seconds() / 60))

    def message(self) -> str:
        what = "this account" if self.scope == "account" else "sign-ins from your network"
        n = self.minutes_left()
        return (
            f"Too many failed sign-ins: {what} is locked for {n} more minute{'s' if n != 1 else ''}. "
            "Try again later or ask an administrator."
        )


class LoginThrottle:
    def __init__(self, settings: Settings, storage: Storage | None = None) -> None:
        if storage is None:
            if settings.redis_url:
                url = settings.redis_url.replace("redis://", "async+redis://", 1)
                url = url.replace("rediss://", "async+rediss://", 1)
                storage = RedisStorage(url, key_prefix="supportlens_login")
            else:
                storage = MemoryStorage()
        self.storage = storage
        self.limiter = MovingWindowRateLimiter(storage)
        minutes = settings.login_lockout_minutes
        self.account_item = RateLimitItemPerMinute(settings.login_max_failures, minutes)
        self.ip_item = RateLimitItemPerMinute(settings.login_ip_max_failures, minutes)

    @staticmethod
    def _account_key(email: str) -> str:
        return email.strip().lower()[:254]

    async def _lock(self, item: RateLimitItemPerMinute, scope: str, key: str) -> Lock | None:
        if await self.limiter.test(item, scope, key):
            return None
        stats = await self.limiter.get_window_stats(item, scope, key)
        reset = stats.reset_time if stats.reset_time > time.time() else time.time() + 60
        return Lock(scope, datetime.fromtimestamp(reset, tz=utcnow().tzinfo))

    async def check(self, email: str, ip: str | None) -> Lock | None:
        """The lock that refuses this attempt now, if any (checked before the password)."""
        if ip and (lock := await self._lock(self.ip_item, "ip", ip)):
            return lock
        if email.strip():
            return await self._lock(self.account_item, "account", self._account_key(email))
        return None

    async def failed(self, email: str, ip: str | None) -> Lock | None:
        """Count one failure; returns the lock this failure just caused, if it caused one."""
        caused: Lock | None = None
        if email.strip():
            key = self._account_key(email)
            await self.limiter.hit(self.account_item, "account", key)
            caused = await self._lock(self.account_item, "account", key)
        if ip:
            await self.limiter.hit(self.ip_item, "ip", ip)
            caused = caused or await self._lock(self.ip_item, "ip", ip)
        return caused

    async def succeeded(self, email: str) -> None:
        await self.limiter.clear(self.account_item, "account", self._account_key(email))

    async def unlock(self, email: str) -> None:
        await self.succeeded(email)


def lockout_window(settings: Settings) -> timedelta:
    return timedelta(minutes=settings.login_lockout_minutes)
