"""Pure-ASGI middleware: request ids, access logs, latency metrics and security headers."""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from supportlens.audit.service import address_ref
from supportlens.config import Settings
from supportlens.logging import get_logger, request_id_var
from supportlens.metrics import HTTP_IN_PROGRESS, HTTP_LATENCY

log = get_logger("supportlens.http")
_RID_OK = re.compile(r"^[A-Za-z0-9._\-]{1,64}$")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; "
    "form-action 'self'; object-src 'none'"
)


def _has_nul(scope: Scope) -> bool:
    """A NUL character in the path or query: no text column can store it (PostgreSQL refuses it)."""
    if "\x00" in scope.get("path", ""):
        return True
    query: bytes = scope.get("query_string") or b""
    return b"%00" in query or b"\x00" in query


async def _refuse_nul(scope: Scope, send: Send) -> None:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": "Invalid request",
            "status": 400,
            "detail": "NUL characters are not allowed",
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 400,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"content-security-policy", CSP.encode()),
                (b"x-content-type-options", b"nosniff"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, settings: Settings, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts
        self.settings = settings  # the access log's client pseudonyms are keyed on its secret key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _has_nul(scope):
            await _refuse_nul(scope, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if _RID_OK.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(rid)
        start = time.perf_counter()
        status_holder: dict[str, Any] = {"status": 500}
        path: str = scope.get("path", "")

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                raw = list(message.get("headers", []))
                names = {k.lower() for k, _ in raw}
                add = [
                    (b"x-request-id", rid.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"strict-origin-when-cross-origin"),
                    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                ]
                if b"content-security-policy" not in names:
                    add.append((b"content-security-policy", CSP.encode()))
                if b"x-frame-options" not in names and not path.startswith("/sandbox/"):
                    add.append((b"x-frame-options", b"DENY"))
                if self.hsts:
                    add.append((b"strict-transport-security", b"max-age=63072000; includeSubDomains"))
                if path.startswith("/api/") and b"cache-control" not in names:
                    add.append((b"cache-control", b"no-store"))
                message["headers"] = raw + [h for h in add if h[0] not in names]
            await send(message)

        HTTP_IN_PROGRESS.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            HTTP_IN_PROGRESS.dec()
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            status = status_holder["status"]
            HTTP_LATENCY.labels(scope.get("method", ""), template, str(status)).observe(elapsed)
            if not path.startswith(("/static/", "/metrics", "/healthz")):
                # The access log: the route template (never the raw path or its query, which can hold
                # an e-mail), and the client only as a keyed pseudonym; the request id ties the line to
                # the audit log.
                client = scope.get("client")
                log.info(
                    "request",
                    method=scope.get("method"),
                    path=template,
                    status=status,
                    duration_ms=round(elapsed * 1000, 1),
                    client=address_ref(client[0] if client else None, self.settings),
                )
            request_id_var.reset(token)
