"""The resilient HTTP layer every vendor client shares.

One `httpx2.AsyncClient` per vendor with timeouts; retries with exponential backoff and full jitter on
429, 5xx and connection errors (tenacity), honouring `Retry-After` when present; client-side rate limits
per bucket (aiolimiter in-process, or `limits` on Redis when a Redis URL is given, so every replica shares
them); a circuit breaker so a failing upstream gets fast failures instead of a retry storm; Prometheus
metrics per call; and every failure mapped to `supportlens.integrations.errors`.

Nothing here logs headers, bodies or query strings: they carry tokens and customer PII.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx2
import structlog
from aiolimiter import AsyncLimiter
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from supportlens import metrics
from supportlens.integrations.errors import (
    UpstreamBadResponse,
    UpstreamError,
    UpstreamForbidden,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)

log = structlog.get_logger(__name__)

HeadersFactory = Callable[[], Awaitable[Mapping[str, str]]]


@dataclass(frozen=True)
class RateLimit:
    """At most `requests` calls in any window of `seconds` seconds."""

    requests: int
    seconds: float

    def describe(self) -> str:
        return f"{self.requests}/{self.seconds:g}s"


@dataclass
class VendorPolicy:
    vendor: str
    base_url: str
    connect_timeout: float = 2.0
    read_timeout: float = 5.0
    max_attempts: int = 3
    retry_budget_seconds: float = 2.5  # no retry is started that would end past this budget
    backoff_multiplier: float = 0.1
    backoff_max: float = 1.0
    breaker_threshold: int = 5  # consecutive failures that open the circuit
    breaker_reset_seconds: float = 15.0  # how long it stays open before one trial call
    limits: dict[str, RateLimit] = field(default_factory=dict)
    limit_wait_seconds: float = 10.0  # longest wait for room under our own rate limit
    redis_url: str | None = None
    user_agent: str = "SupportLens/0.1"


# ------------------------------------------------------------------------------------------ breaker


_MANUAL_RETRY: ContextVar[bool] = ContextVar("supportlens_manual_retry", default=False)
# Set while a trial call runs: a call nested in it (Dwolla's token fetch inside the headers of a data
# call) is part of that trial, not a second call through the open circuit.
_IN_TRIAL: ContextVar[bool] = ContextVar("supportlens_in_breaker_trial", default=False)


@contextmanager
def manual_retry() -> Iterator[None]:
    """An agent pressed Retry: calls made inside may take the one trial through an open circuit at once,
    instead of waiting out its cool-down (the tasks they start inherit this, as asyncio copies context)."""
    token = _MANUAL_RETRY.set(True)
    try:
        yield
    finally:
        _MANUAL_RETRY.reset(token)


class CircuitBreaker:
    """Closed -> open after `threshold` consecutive failures; after `reset_seconds` one trial call
    (half-open) decides: success closes it, failure opens it again. Open means fail fast. A manual
    retry (an agent's Retry) may make that one trial call before the cool-down ends."""

    def __init__(self, vendor: str, threshold: int, reset_seconds: float) -> None:
        self.vendor = vendor
        self.threshold = threshold
        self.reset_seconds = reset_seconds
        self.failures = 0
        self.first_failure_at: float | None = None  # of the current run of failures
        self.last_failure_at: float | None = None
        self.opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        if time.monotonic() - self.opened_at >= self.reset_seconds:
            return "half_open"
        return "open"

    def before_call(self, *, manual: bool = False, nested_in_trial: bool = False) -> bool:
        """Raises when the circuit is open; True when this call is the one trial call."""
        state = self.state
        if state == "closed" or nested_in_trial:
            return False
        if (state == "half_open" or manual) and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        remaining = self.reset_seconds - (time.monotonic() - (self.opened_at or 0.0))
        exc = UpstreamUnavailable(
            self.vendor, f"circuit open after repeated failures; next try in {max(remaining, 0):.0f}s"
        )
        exc.tries = self.failures
        exc.over_seconds = (self.last_failure_at or 0.0) - (self.first_failure_at or 0.0)
        raise exc

    def on_success(self) -> None:
        self.failures = 0
        self.first_failure_at = self.last_failure_at = None
        self.opened_at = None
        self._trial_in_flight = False

    def on_failure(self) -> None:
        self.failures += 1
        self.last_failure_at = time.monotonic()
        if self.first_failure_at is None:
            self.first_failure_at = self.last_failure_at
        was_trial = self._trial_in_flight
        self._trial_in_flight = False
        if was_trial or self.failures >= self.threshold:
            if self.opened_at is None or was_trial:
                log.warning("upstream.circuit_open", vendor=self.vendor, failures=self.failures)
            self.opened_at = time.monotonic()


# ------------------------------------------------------------------------------------------ limiter


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


def make_limiter(policy: VendorPolicy) -> Limiter:
    if policy.redis_url:
        return SharedLimiter(
            LocalLimiter(policy.vendor, policy.limits, policy.limit_wait_seconds, pace_only=True),
            RedisLimiter(policy.vendor, policy.limits, policy.limit_wait_seconds, policy.redis_url),
        )
    return LocalLimiter(policy.vendor, policy.limits, policy.limit_wait_seconds)


# ------------------------------------------------------------------------------------------ helpers


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _retryable(exc: BaseException) -> bool:
    if getattr(exc, "exhausted", False):
        return False
    if isinstance(exc, UpstreamUnavailable):
        return not getattr(exc, "circuit_open", False)
    return isinstance(exc, UpstreamRateLimited) and exc.status == 429


def _retryable_unprocessed(exc: BaseException) -> bool:
    return _retryable(exc) and isinstance(exc, UpstreamRateLimited)


class _WaitRetryAfter:
    """Backoff with full jitter, unless the upstream said how long to wait (Retry-After)."""

    def __init__(self, fallback: Any) -> None:
        self.fallback = fallback

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return float(retry_after)
        return float(self.fallback(state))


# ------------------------------------------------------------------------------------------ client


class VendorHTTP:
    """A vendor's HTTP client. `request()` returns parsed JSON or raises an UpstreamError."""

    def __init__(self, policy: VendorPolicy, *, transport: httpx2.AsyncBaseTransport | None = None) -> None:
        self.policy = policy
        self.vendor = policy.vendor
        timeout = httpx2.Timeout(
            policy.read_timeout, connect=policy.connect_timeout, pool=policy.limit_wait_seconds
        )
        self.client = httpx2.AsyncClient(
            base_url=policy.base_url.rstrip("/"),
            timeout=timeout,
            transport=transport,
            headers={"User-Agent": policy.user_agent},
            # Idle connections are dropped after 4 s, before a server's keep-alive timeout (uvicorn's is
            # 5 s) can close one just as a request goes out on it: a ReadError that says nothing about
            # the vendor's health, yet five at once opened the circuit breaker.
            limits=httpx2.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=4.0),
            follow_redirects=False,
        )
        self.breaker = CircuitBreaker(policy.vendor, policy.breaker_threshold, policy.breaker_reset_seconds)
        self.limiter = make_limiter(policy)

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.limiter.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        bucket: str | None = None,
        params: Mapping[str, Any] | None = None,
        json_body: Any | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        headers_factory: HeadersFactory | None = None,
        on_unauthorized: Callable[[], Awaitable[None]] | None = None,
        expect_json: bool = True,
        idempotent: bool = True,
    ) -> Any:
        """One logical call: retries, limits and the breaker included.

        `headers_factory` supplies auth headers per attempt; when the upstream answers 401 and
        `on_unauthorized` is given, it runs once (e.g. to renew a token) and the call is made again.
        A call that is not `idempotent` (a POST that creates something) is retried only after a 429,
        which says the request was not processed: after a 5xx or a lost connection it may have been,
        and a second attempt could make a duplicate.
        """
        retrying = AsyncRetrying(
            retry=retry_if_exception(_retryable if idempotent else _retryable_unprocessed),
            stop=stop_after_attempt(self.policy.max_attempts)
            | stop_before_delay(self.policy.retry_budget_seconds),
            wait=_WaitRetryAfter(
                wait_random_exponential(
                    multiplier=self.policy.backoff_multiplier, max=self.policy.backoff_max
                )
            ),
            reraise=True,
            before_sleep=self._log_retry(method, path),
        )
        renewed = False
        started = time.monotonic()

        async def once() -> Any:
            nonlocal renewed
            args = (method, path, bucket, params, json_body, data, headers, headers_factory, expect_json)
            try:
                return await self._attempt(*args)
            except _Unauthorized:
                if on_unauthorized is None or renewed:
                    raise UpstreamBadResponse(self.vendor, "credentials rejected (401)", status=401) from None
            renewed = True
            await on_unauthorized()
            try:
                return await self._attempt(*args)
            except _Unauthorized:
                raise UpstreamBadResponse(self.vendor, "credentials rejected (401)", status=401) from None

        try:
            async for attempt in retrying:
                with attempt:
                    return await once()
        except UpstreamError as exc:
            # A call nested in another (a token fetch inside a data call) has had its retries:
            # the outer call must not multiply them.
            exc.exhausted = True  # type: ignore[attr-defined]
            if exc.tries is None:  # the breaker's own count stands when the circuit was open
                exc.tries = retrying.statistics.get("attempt_number", 1)
                exc.over_seconds = time.monotonic() - started
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _log_retry(self, method: str, path: str) -> Callable[[RetryCallState], None]:
        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            log.info(
                "upstream.retry",
                vendor=self.vendor,
                method=method,
                path=path,
                attempt=state.attempt_number,
                wait=round(state.upcoming_sleep, 3),
                error=type(exc).__name__,
            )

        return before_sleep

    async def _attempt(
        self,
        method: str,
        path: str,
        bucket: str | None,
        params: Mapping[str, Any] | None,
        json_body: Any | None,
        data: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        headers_factory: HeadersFactory | None,
        expect_json: bool,
    ) -> Any:
        try:
            is_trial = self.breaker.before_call(manual=_MANUAL_RETRY.get(), nested_in_trial=_IN_TRIAL.get())
        except UpstreamUnavailable as exc:
            exc.circuit_open = True  # type: ignore[attr-defined]
            metrics.UPSTREAM_CALLS.labels(self.vendor, "circuit_open").inc()
            raise
        trial_token = _IN_TRIAL.set(True) if is_trial else None
        try:
            return await self._attempt_through(
                method, path, bucket, params, json_body, data, headers, headers_factory, expect_json
            )
        finally:
            if trial_token is not None:
                _IN_TRIAL.reset(trial_token)

    async def _attempt_through(
        self,
        method: str,
        path: str,
        bucket: str | None,
        params: Mapping[str, Any] | None,
        json_body: Any | None,
        data: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        headers_factory: HeadersFactory | None,
        expect_json: bool,
    ) -> Any:
        """One attempt the breaker has let through."""
        try:
            if bucket:
                waited_from = time.perf_counter()
                await self.limiter.acquire(bucket)
                metrics.UPSTREAM_LIMIT_WAIT.labels(self.vendor, bucket).observe(
                    time.perf_counter() - waited_from
                )
            all_headers: dict[str, str] = dict(headers or {})
            if headers_factory is not None:
                all_headers.update(await headers_factory())
        except BaseException:
            self.breaker._trial_in_flight = False
            raise
        started = time.perf_counter()
        outcome = "ok"
        try:
            try:
                response = await self.client.request(
                    method, path, params=params, json=json_body, data=data, headers=all_headers
                )
            except httpx2.TimeoutException as exc:
                if isinstance(exc, httpx2.ConnectTimeout):
                    raise UpstreamUnavailable(self.vendor, "could not connect in time") from exc
                raise UpstreamTimeout(self.vendor, "no answer in time") from exc
            except httpx2.TransportError as exc:
                raise UpstreamUnavailable(self.vendor, f"connection failed ({type(exc).__name__})") from exc
            result = self._handle(response, expect_json)
        except _Unauthorized:
            outcome = "unauthorized"
            self.breaker.on_success()  # the upstream is alive; only our credentials are stale
            raise
        except UpstreamError as exc:
            outcome = exc.outcome
            if isinstance(exc, UpstreamUnavailable | UpstreamTimeout):
                self.breaker.on_failure()
            else:
                self.breaker.on_success()
            raise
        except BaseException:
            outcome = "cancelled"
            self.breaker._trial_in_flight = False
            raise
        finally:
            metrics.UPSTREAM_CALLS.labels(self.vendor, outcome).inc()
            metrics.UPSTREAM_LATENCY.labels(self.vendor).observe(time.perf_counter() - started)
        self.breaker.on_success()
        return result

    def _handle(self, response: httpx2.Response, expect_json: bool) -> Any:
        status = response.status_code
        if status == 401:
            raise _Unauthorized()
        if status == 429:
            raise UpstreamRateLimited(
                self.vendor,
                "rate limited by the upstream (429)",
                retry_after=parse_retry_after(response.headers.get("retry-after")),
            )
        if status >= 500:
            raise UpstreamUnavailable(self.vendor, f"upstream error (HTTP {status})", status=status)
        if status >= 400:
            code = _error_code(response)
            refused = UpstreamForbidden if status == 403 else UpstreamNotFound if status == 404 else None
            raise (refused or UpstreamBadResponse)(
                self.vendor,
                f"request refused (HTTP {status}{f', {code}' if code else ''})",
                status=status,
                code=code,
            )
        if not expect_json:
            return response
        if not response.content:
            return None
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
            raise UpstreamBadResponse(self.vendor, "malformed JSON in the answer", status=status) from exc


class _Unauthorized(Exception):
    pass


def _error_code(response: httpx2.Response) -> str | None:
    """The vendor's error code (e.g. Dwolla `NotFound`, HubSpot `VALIDATION_ERROR`), never its message."""
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict):
        code = body.get("code") or body.get("category") or body.get("errorType")
        if isinstance(code, str) and code.isascii() and len(code) <= 40:
            return code
    return None
