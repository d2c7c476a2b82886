"""The resilient HTTP layer every vendor client shares.

One `httpx2.AsyncClient` per vendor with timeouts; retries with exponential backoff and full jitter on
429, 5xx and connection errors (tenacity), honouring `Retry-After` when present; client-side rate limits
per bucket (`ratelimits.py`: aiolimiter in-process, or `limits` on Redis when a Redis URL is given, so every
replica shares them); a circuit breaker (`breaker.py`) so a failing upstream gets fast failures instead of a
retry storm; Prometheus
metrics per call; and every failure mapped to `supportlens.integrations.errors`.

Nothing here logs headers, bodies or query strings: they carry tokens and customer PII.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx2
import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_random_exponential,
)

from supportlens import metrics
from supportlens.integrations.breaker import IN_TRIAL, MANUAL_RETRY, CircuitBreaker
from supportlens.integrations.errors import (
    UpstreamBadResponse,
    UpstreamError,
    UpstreamForbidden,
    UpstreamNotFound,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from supportlens.integrations.ratelimits import RateLimit, make_limiter

log = structlog.get_logger(__name__)

HeadersFactory = Callable[[], Awaitable[Mapping[str, str]]]


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
        self.limiter = make_limiter(policy.vendor, policy.limits, policy.limit_wait_seconds, policy.redis_url)

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
            is_trial = self.breaker.before_call(manual=MANUAL_RETRY.get(), nested_in_trial=IN_TRIAL.get())
        except UpstreamUnavailable as exc:
            exc.circuit_open = True  # type: ignore[attr-defined]
            metrics.UPSTREAM_CALLS.labels(self.vendor, "circuit_open").inc()
            raise
        trial_token = IN_TRIAL.set(True) if is_trial else None
        try:
            return await self._attempt_through(
                method, path, bucket, params, json_body, data, headers, headers_factory, expect_json
            )
        finally:
            if trial_token is not None:
                IN_TRIAL.reset(trial_token)

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
