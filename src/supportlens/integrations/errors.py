"""Errors every vendor client raises, so callers handle HubSpot, Dwolla and Clarity alike."""

from __future__ import annotations


class UpstreamError(Exception):
    """An upstream call failed. `vendor` names the system; `status` is the HTTP status when there was one."""

    outcome = "error"
    # Set by the HTTP layer: how many attempts this failure took and over how long (for plain words).
    tries: int | None = None
    over_seconds: float | None = None

    def __init__(
        self, vendor: str, message: str, *, status: int | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.vendor = vendor
        self.message = message
        self.status = status
        self.code = code  # the vendor's own error code (HubSpot `category`, Dwolla `code`), when it sent one

    def __str__(self) -> str:
        return f"{self.vendor}: {self.message}"


class UpstreamTimeout(UpstreamError):
    """The upstream did not answer in time."""

    outcome = "timeout"


class UpstreamRateLimited(UpstreamError):
    """The upstream answered 429 (after our retries), or our own limiter had no room in time."""

    outcome = "rate_limited"

    def __init__(
        self, vendor: str, message: str, *, status: int | None = 429, retry_after: float | None = None
    ) -> None:
        super().__init__(vendor, message, status=status)
        self.retry_after = retry_after


class UpstreamUnavailable(UpstreamError):
    """Connection refused, 5xx, or the circuit breaker is open after repeated failures."""

    outcome = "unavailable"


class UpstreamBadResponse(UpstreamError):
    """The upstream answered something we cannot use: malformed JSON, an unexpected shape, a 4xx."""

    outcome = "bad_response"


class UpstreamForbidden(UpstreamBadResponse):
    """403: our credentials are valid but lack a permission, e.g. a HubSpot private app without a scope
    (`code` MISSING_SCOPES) or a Dwolla application not enabled for an endpoint (`code` Forbidden)."""


class UpstreamNotFound(UpstreamBadResponse):
    """404: the object does not exist there (never created, deleted or archived)."""


def _span(seconds: float) -> str:
    return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"


def in_plain_words(exc: UpstreamError) -> str:
    """What an agent reads after the vendor's name, e.g. "is not answering (3 tries over 10 s)"."""
    if isinstance(exc, UpstreamUnavailable | UpstreamTimeout):
        if exc.tries and exc.over_seconds is not None:
            tries = "1 try" if exc.tries == 1 else f"{exc.tries} tries"
            return f"is not answering ({tries} over {_span(exc.over_seconds)})"
        return "is not answering"
    if isinstance(exc, UpstreamRateLimited):
        return "is busy and asked SupportLens to slow down"
    if isinstance(exc, UpstreamForbidden):
        return "refused: SupportLens lacks a permission there"
    if isinstance(exc, UpstreamNotFound):
        return "does not have this record"
    if isinstance(exc, UpstreamBadResponse) and exc.status == 401:
        return "rejected SupportLens's credentials"
    return "could not be read"
