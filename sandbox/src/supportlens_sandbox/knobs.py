"""Runtime knobs of a sandbox simulator: added latency, errors, forced 429s, hangs, malformed JSON.

Each simulator app holds one `SandboxControl` (`app.state.sandbox`) with its `Knobs`. Tests change
them in code (`app.state.sandbox.knobs.latency_ms = 150` or `control.update(...)`); another process
(a benchmark, the demo) changes them over HTTP on the simulator itself:

    POST /__sandbox/knobs   {"latency_ms": 150, "error_rate": 0.2}   -> the knobs after the change
    GET  /__sandbox/knobs                                            -> the current knobs
    POST /__sandbox/reset                                            -> defaults, counters cleared
    GET  /__sandbox/stats                                            -> request counters

`set_remote_knobs(base_url, **changes)` and `reset_remote(base_url)` do this from Python.

Knobs apply to vendor paths only (never to /__sandbox/*), and only to paths starting with
`path_prefix` when it is set. Order per request: latency (+ jitter), hang, forced 429, forced or
random 5xx, malformed JSON; then the vendor's own checks (token, real rate limits) and answer.
Randomness (error_rate, jitter) comes from `random.Random(seed)`, re-seeded on every change, so a
run with the same knobs and the same request order fails the same requests.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ADMIN_PREFIX = "/__sandbox"


@dataclass
class Knobs:
    latency_ms: float = 0.0  # added to every vendor call
    jitter_ms: float = 0.0  # plus a uniform random 0..jitter_ms
    error_rate: float = 0.0  # share of calls answered with `error_status` (0..1)
    error_status: int = 503
    fail_next: int = 0  # the next N calls answer `error_status`
    force_429_next: int = 0  # the next N calls answer 429
    force_429_always: bool = False
    hang: bool = False  # hold every call until the client gives up (or hang_seconds, or hang is unset)
    hang_seconds: float = 300.0
    malformed_next: int = 0  # the next N calls answer 200 with a truncated JSON body
    malformed_always: bool = False
    path_prefix: str = ""  # apply the knobs above only to paths starting with this
    rate_limits: bool = True  # enforce the vendor's real limits (HubSpot search 5/s per token, ...)
    search_per_second: int = 5  # HubSpot: search requests per second per token
    general_per_10s: int = 190  # HubSpot: other requests per 10 seconds per token
    requests_per_second: int = 0  # Dwolla: requests per second per token (0 = unlimited; undocumented)
    token_ttl_seconds: int = 3600  # Dwolla: expires_in of new access tokens
    webhook_retry_scale: float = 1.0  # Dwolla: multiplies its webhook retry schedule (15 min … 72 h)
    webhook_timeout_seconds: float = 10.0  # Dwolla: an attempt that takes longer counts as failed
    seed: int = 0

    @classmethod
    def names(cls) -> set[str]:
        return {f.name for f in fields(cls)}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class KnobError(ValueError):
    pass


def _coerce(name: str, value: Any, current: Any) -> Any:
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise KnobError(f"{name} must be true or false")
        return value
    if isinstance(current, int):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise KnobError(f"{name} must be a non-negative integer")
        return value
    if isinstance(current, float):
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise KnobError(f"{name} must be a non-negative number")
        if name == "error_rate" and value > 1:
            raise KnobError("error_rate must be between 0 and 1")
        return float(value)
    if not isinstance(value, str):
        raise KnobError(f"{name} must be a string")
    return value


@dataclass
class Outcome:
    """What the knobs decided for one request: None fields mean 'answer normally'."""

    status: int | None = None  # 429 or a 5xx
    malformed: bool = False


class SandboxControl:
    """Knobs, their random generator and counters of one simulator instance (thread-safe)."""

    def __init__(self, name: str, knobs: Knobs | None = None) -> None:
        self.name = name
        self.knobs = knobs or Knobs()
        self._defaults = Knobs(**self.knobs.as_dict())
        self._lock = threading.Lock()
        self.rng = random.Random(self.knobs.seed)
        self.counters: Counter[str] = Counter()
        self.search_times: deque[float] = deque(maxlen=10_000)
        self.windows: dict[str, deque[float]] = {}
        self.generation = 0  # bumped on every change; hanging requests watch it

    # -- changing knobs
    def update(self, **changes: Any) -> Knobs:
        unknown = set(changes) - Knobs.names()
        if unknown:
            raise KnobError(f"unknown knob(s): {', '.join(sorted(unknown))}")
        with self._lock:
            current = self.knobs.as_dict()
            coerced = {k: _coerce(k, v, current[k]) for k, v in changes.items()}
            for key, value in coerced.items():
                setattr(self.knobs, key, value)
            self.rng = random.Random(self.knobs.seed)
            self.generation += 1
            return self.knobs

    def reset(self) -> Knobs:
        with self._lock:
            for key, value in self._defaults.as_dict().items():
                setattr(self.knobs, key, value)
            self.rng = random.Random(self.knobs.seed)
            self.counters.clear()
            self.search_times.clear()
            self.windows.clear()
            self.generation += 1
            return self.knobs

    # -- per request
    def applies_to(self, path: str) -> bool:
        return not path.startswith(ADMIN_PREFIX) and path.startswith(self.knobs.path_prefix or "/")

    def delay_seconds(self) -> float:
        k = self.knobs
        with self._lock:
            jitter = self.rng.uniform(0, k.jitter_ms) if k.jitter_ms else 0.0
        return (k.latency_ms + jitter) / 1000.0

    def decide(self) -> Outcome:
        k = self.knobs
        with self._lock:
            if k.force_429_always:
                return Outcome(status=429)
            if k.force_429_next > 0:
                k.force_429_next -= 1
                return Outcome(status=429)
            if k.fail_next > 0:
                k.fail_next -= 1
                return Outcome(status=k.error_status)
            if k.error_rate and self.rng.random() < k.error_rate:
                return Outcome(status=k.error_status)
            if k.malformed_always:
                return Outcome(malformed=True)
            if k.malformed_next > 0:
                k.malformed_next -= 1
                return Outcome(malformed=True)
        return Outcome()

    def allow(self, key: str, limit: int, window_seconds: float) -> bool:
        """Sliding-window limiter: True and counted when under `limit` calls in the last window."""
        if limit <= 0 or not self.knobs.rate_limits:
            return True
        now = time.monotonic()
        with self._lock:
            window = self.windows.setdefault(key, deque())
            while window and now - window[0] >= window_seconds:
                window.popleft()
            if len(window) >= limit:
                return False
            window.append(now)
            return True

    def remaining(self, key: str, limit: int, window_seconds: float) -> int:
        now = time.monotonic()
        with self._lock:
            window = self.windows.get(key, deque())
            return max(0, limit - sum(1 for t in window if now - t < window_seconds))

    def count(self, name: str) -> None:
        with self._lock:
            self.counters[name] += 1

    def record_search(self) -> None:
        with self._lock:
            self.search_times.append(time.monotonic())

    def stats(self) -> dict[str, Any]:
        with self._lock:
            times = list(self.search_times)
            counters = dict(self.counters)
        busiest = 0
        start = 0
        for end, t in enumerate(times):
            while t - times[start] >= 1.0:
                start += 1
            busiest = max(busiest, end - start + 1)
        return {
            "simulator": self.name,
            "counters": counters,
            "searches": len(times),
            "max_searches_per_second": busiest,
        }


ErrorBody = Callable[[int], tuple[bytes, str]]  # status -> (body, content type)


class KnobsMiddleware:
    """Pure ASGI middleware applying a SandboxControl's knobs in front of a simulator."""

    def __init__(self, app: ASGIApp, control: SandboxControl, error_body: ErrorBody,
                 malformed_body: bytes, content_type: str) -> None:  # fmt: skip
        self.app = app
        self.control = control
        self.error_body = error_body
        self.malformed_body = malformed_body
        self.content_type = content_type

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.control.applies_to(scope["path"]):
            await self.app(scope, receive, send)
            return
        control = self.control
        control.count("requests")
        delay = control.delay_seconds()
        if delay > 0:
            await asyncio.sleep(delay)
        if control.knobs.hang:
            control.count("hung")
            receive, gone = await self._hang(receive)
            if gone:
                return
        outcome = control.decide()
        if outcome.status is not None:
            control.count(f"forced_{outcome.status}")
            body, ctype = self.error_body(outcome.status)
            await _respond(send, outcome.status, body, ctype)
            return
        if outcome.malformed:
            control.count("malformed")
            await _respond(send, 200, self.malformed_body, self.content_type)
            return
        await self.app(scope, receive, send)

    async def _hang(self, receive: Receive) -> tuple[Receive, bool]:
        """Hold the request while `hang` is set, until hang_seconds or until the client disconnects.

        Returns a receive callable replaying the buffered request body, and whether the client left.
        """
        control = self.control
        deadline = time.monotonic() + control.knobs.hang_seconds
        buffered: list[Message] = []
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        if buffered[-1]["type"] == "http.disconnect":
            return receive, True
        disconnected = asyncio.Event()

        async def watch() -> None:
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected.set()

        watcher = asyncio.create_task(watch())
        try:
            # Polling: `hang` is also flipped in code from other threads, where no asyncio.Event is at hand.
            while control.knobs.hang and time.monotonic() < deadline and not disconnected.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        finally:
            watcher.cancel()
        if disconnected.is_set():
            return receive, True

        async def replay() -> Message:
            if buffered:
                return buffered.pop(0)
            return await receive()

        return replay, False


async def _respond(send: Send, status: int, body: bytes, content_type: str,
                   headers: list[tuple[bytes, bytes]] | None = None) -> None:  # fmt: skip
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def admin_router(control: SandboxControl) -> APIRouter:
    """The /__sandbox/* endpoints of one simulator."""
    router = APIRouter(prefix=ADMIN_PREFIX, include_in_schema=False)

    @router.get("/knobs")
    async def get_knobs() -> dict[str, Any]:
        return control.knobs.as_dict()

    @router.post("/knobs")
    async def set_knobs(request: Request) -> Any:
        try:
            changes = json.loads(await request.body() or b"{}")
            if not isinstance(changes, dict):
                raise KnobError("send a JSON object of knob names and values")
            return control.update(**changes).as_dict()
        except (KnobError, json.JSONDecodeError) as exc:
            return JSONResponse({"error": str(exc), "knobs": sorted(Knobs.names())}, status_code=400)

    @router.post("/reset")
    async def reset() -> dict[str, Any]:
        return control.reset().as_dict()

    @router.get("/stats")
    async def stats() -> dict[str, Any]:
        return control.stats()

    return router


def wrap(app: Any, control: SandboxControl, error_body: ErrorBody, malformed_body: bytes,
         content_type: str) -> None:  # fmt: skip
    """Install the knobs middleware and admin routes on a FastAPI app."""
    app.include_router(admin_router(control))
    app.add_middleware(
        KnobsMiddleware,
        control=control,
        error_body=error_body,
        malformed_body=malformed_body,
        content_type=content_type,
    )
    app.state.sandbox = control


# -- from another process -----------------------------------------------------------------------


def set_remote_knobs(base_url: str, **changes: Any) -> dict[str, Any]:
    import httpx2

    response = httpx2.post(f"{base_url.rstrip('/')}{ADMIN_PREFIX}/knobs", json=changes, timeout=10)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def reset_remote(base_url: str) -> dict[str, Any]:
    import httpx2

    response = httpx2.post(f"{base_url.rstrip('/')}{ADMIN_PREFIX}/reset", timeout=10)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


async def aset_remote_knobs(base_url: str, **changes: Any) -> dict[str, Any]:
    import httpx2

    async with httpx2.AsyncClient(timeout=10) as client:
        response = await client.post(f"{base_url.rstrip('/')}{ADMIN_PREFIX}/knobs", json=changes)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result


async def areset_remote(base_url: str) -> dict[str, Any]:
    import httpx2

    async with httpx2.AsyncClient(timeout=10) as client:
        response = await client.post(f"{base_url.rstrip('/')}{ADMIN_PREFIX}/reset")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result
