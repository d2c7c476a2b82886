"""Client of Clarity's Data Export API (project live insights).

GET {base}/export-data/api/v1/project-live-insights?numOfDays=1..3&dimension1..3, with the
project's bearer token, through the shared HTTP layer (timeouts, breaker, metrics). The quota is
10 calls per project per day, so this client never retries: a 429 stays a 429 until tomorrow.
Spending the quota is decided by the caller (see supportlens.insights.service), which reserves a
call in the database before calling `fetch`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx2

from supportlens.config import Settings
from supportlens.integrations.clarity.models import DIMENSIONS, canonical_dimension
from supportlens.integrations.errors import (
    UpstreamError,
    UpstreamRateLimited,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from supportlens.integrations.http import VendorHTTP, VendorPolicy

EXPORT_PATH = "/export-data/api/v1/project-live-insights"
VENDOR = "clarity"


class ClarityExportError(Exception):
    """A failed export call. `status` is the connection status shown to admins."""

    status = "error"

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ClarityUnauthorized(ClarityExportError):
    status = "unauthorized"


class ClarityForbidden(ClarityExportError):
    status = "forbidden"


class ClarityQuotaExhausted(ClarityExportError):
    status = "quota_exhausted"


class ClarityBadRequest(ClarityExportError):
    status = "bad_request"


@dataclass
class ExportAnswer:
    payload: Any
    status_code: int
    elapsed_seconds: float


def validate_request(num_of_days: int, dimensions: list[str] | tuple[str, ...]) -> list[str]:
    """Documented limits: numOfDays 1..3, up to three known dimensions. Returns canonical names."""
    if num_of_days not in (1, 2, 3):
        raise ValueError("numOfDays must be 1, 2 or 3")
    if len(dimensions) > 3:
        raise ValueError("at most three dimensions")
    out = []
    for d in dimensions:
        c = canonical_dimension(d)
        if c is None:
            raise ValueError(f"unknown dimension {d!r}; known: {', '.join(DIMENSIONS)}")
        out.append(c)
    return out


class ClarityExportClient:
    def __init__(
        self,
        settings: Settings,
        timeout: float = 20.0,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = settings.clarity_export_base_url.rstrip("/")
        self.token = settings.clarity_api_token.get_secret_value()
        self.project_id = settings.clarity_project_id
        self._http = ClarityHTTP(self.base_url, self.token, read_timeout=timeout, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def configured(self) -> bool:
        return bool(self.token and self.project_id)

    async def fetch(self, num_of_days: int, dimensions: list[str] | tuple[str, ...] = ()) -> ExportAnswer:
        """One call. Raises a ClarityExportError subclass for 400/401/403/429/5xx and network errors."""
        dims = validate_request(num_of_days, dimensions)
        params: dict[str, str] = {"numOfDays": str(num_of_days)}
        for i, d in enumerate(dims, start=1):
            params[f"dimension{i}"] = d
        started = time.perf_counter()
        payload = await self._http.call("GET", EXPORT_PATH, params=params)
        return ExportAnswer(payload=payload, status_code=200, elapsed_seconds=time.perf_counter() - started)


class ClarityHTTP:
    """One HTTP client for one Clarity API, built once with its client (at start-up), with NO retries:
    every call spends a daily quota. Maps failures to the Clarity errors whose `status` the admin page
    shows."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        read_timeout: float = 20.0,
        vendor: str = VENDOR,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self._token = token
        policy = VendorPolicy(
            vendor=vendor,
            base_url=base_url,
            connect_timeout=5.0,
            read_timeout=read_timeout,
            max_attempts=1,
            retry_budget_seconds=0.0,
        )
        self._http = VendorHTTP(policy, transport=transport)

    async def call(
        self, method: str, path: str, *, params: dict[str, str] | None = None, json_body: Any = None
    ) -> Any:
        try:
            return await self._http.request(
                method,
                path,
                params=params,
                json_body=json_body,
                headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
            )
        except UpstreamError as exc:
            raise _clarity_error(exc) from exc

    async def aclose(self) -> None:
        await self._http.aclose()


def _clarity_error(exc: UpstreamError) -> ClarityExportError:
    code = exc.status
    if code == 401:
        return ClarityUnauthorized(
            "Clarity refused the API token (401): it is wrong or expired. Create a new one under "
            "Settings → Data Export.",
            status_code=code,
        )
    if code == 403:
        return ClarityForbidden(
            "Clarity answered 403 Forbidden: the token has no access to this project.", status_code=code
        )
    if code == 429 or isinstance(exc, UpstreamRateLimited):
        return ClarityQuotaExhausted(
            "Clarity answered 429: the project's 10 calls for today are used up.", status_code=429
        )
    if code == 400:
        return ClarityBadRequest(f"Clarity rejected the request (400): {exc.message}", status_code=code)
    if isinstance(exc, UpstreamTimeout):
        return ClarityExportError("Clarity did not answer in time.", status_code=code)
    if isinstance(exc, UpstreamUnavailable) and code is None:
        return ClarityExportError(f"Clarity could not be reached ({exc.message}).", status_code=code)
    return ClarityExportError(f"Clarity call failed: {exc.message}", status_code=code)


def _short(text: str, limit: int = 300) -> str:
    text = " ".join((text or "").split())
    return text[:limit] + ("…" if len(text) > limit else "")
