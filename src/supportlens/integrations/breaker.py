"""The circuit breaker every vendor client shares, and the agent's manual retry through it.

Closed -> open after a run of consecutive failures; after a cool-down one trial call (half-open) decides.
Our own code rather than a library: README, "Why each dependency is here", says what the libraries lack.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import structlog

from supportlens.integrations.errors import UpstreamUnavailable

log = structlog.get_logger(__name__)

MANUAL_RETRY: ContextVar[bool] = ContextVar("supportlens_manual_retry", default=False)
# Set while a trial call runs: a call nested in it (Dwolla's token fetch inside the headers of a data
# call) is part of that trial, not a second call through the open circuit.
IN_TRIAL: ContextVar[bool] = ContextVar("supportlens_in_breaker_trial", default=False)


@contextmanager
def manual_retry() -> Iterator[None]:
    """An agent pressed Retry: calls made inside may take the one trial through an open circuit at once,
    instead of waiting out its cool-down (the tasks they start inherit this, as asyncio copies context)."""
    token = MANUAL_RETRY.set(True)
    try:
        yield
    finally:
        MANUAL_RETRY.reset(token)


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
