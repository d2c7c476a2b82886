"""The public side's routes: supportlens.js, `POST /api/ingest/v1/events` and the admin pages of sites."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_random

from supportlens.audit import service as audit
from supportlens.auth.deps import AdminPrincipal, DbDep
from supportlens.capture import sites
from supportlens.capture.ingest import check_event_times, ingest_batch
from supportlens.capture.ratelimit import IngestLimiter
from supportlens.capture.schemas import MAX_BODY_BYTES, IngestBatch, IngestResult
from supportlens.logging import get_logger
from supportlens.metrics import INGEST_BATCHES
from supportlens.problems import ProblemError, problem_response, validation_errors
from supportlens.web.pages import render

log = get_logger("supportlens.ingest")
# The public ingest endpoints have their own router, which the app registers first: sites' batches are
# most of the requests, and a request is matched against every route registered before its own.
ingest_router = APIRouter(tags=["capture"])
# The admin pages of the sites that send sessions.
router = APIRouter(tags=["capture"])
SDK_FILE = Path(__file__).parent / "sdk" / "supportlens.js"
INGEST_PATH = "/api/ingest/v1/events"
ALLOWED_TYPES = ("application/json", "text/plain")
# A batch whose transaction fails on a transient database error (a dropped connection, a serialisation
# failure) is replayed as a whole: it is idempotent by event id.
RETRIES = 3


# ---- public: SDK and ingest ----------------------------------------------------------------------


@ingest_router.get("/sdk/v1/supportlens.js", include_in_schema=False)
async def sdk() -> Response:
    return Response(
        SDK_FILE.read_bytes(),
        media_type="application/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=300", "Cross-Origin-Resource-Policy": "cross-origin"},
    )


def _state(request: Request) -> tuple[sites.SiteCache, IngestLimiter]:
    state = request.app.state
    if getattr(state, "ingest_sites", None) is None:
        state.ingest_sites = sites.make_cache(state.settings.ingest_site_cache_seconds)
        state.ingest_limiter = IngestLimiter(state.settings)
    return state.ingest_sites, state.ingest_limiter


def _cors(origin: str) -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": origin,
        "Access-Control-Expose-Headers": "Retry-After",
        "Vary": "Origin",
    }


def _fail(
    status: int, title: str, detail: str | None = None, *, origin: str | None = None, **kw: Any
) -> Response:
    INGEST_BATCHES.labels(str(status)).inc()
    headers = dict(kw.pop("headers", None) or {})
    if origin:
        headers.update(_cors(origin))
    return problem_response(status, title, detail, headers=headers or None, **kw)


@ingest_router.options(INGEST_PATH, include_in_schema=False)
async def ingest_preflight(request: Request) -> Response:
    origin = request.headers.get("origin", "")
    cache, _ = _state(request)
    async with request.app.state.sessionmaker() as db:
        allowed = await cache.all_origins(db)
    if not origin or origin not in allowed:
        return Response(status_code=403)
    return Response(
        status_code=204,
        headers={
            **_cors(origin),
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": "600",
        },
    )


_UNION_TAGS = {"str", "int", "float", "bool", "none", "datetime", "uuid"}


def _field(dotted: str) -> str:
    """`events.0.data.k.str` -> `events.0.data.k`: drop pydantic's union-member and validator tags."""
    parts = [p for p in dotted.split(".") if p not in _UNION_TAGS and "[" not in p]
    return ".".join(parts) or "body"


async def _read_body(request: Request) -> bytes | None:
    """The body, or None once it passes MAX_BODY_BYTES (counted while reading, whatever the headers say)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@ingest_router.post(
    INGEST_PATH,
    status_code=202,
    summary="Ingest v1: events from supportlens.js (public, site key)",
    responses={400: {}, 401: {}, 403: {}, 413: {}, 429: {}},
)
async def ingest_events(request: Request) -> Response:
    settings = request.app.state.settings
    cache, limiter = _state(request)
    origin = request.headers.get("origin")
    refused = _refuse_headers(request)
    if refused is not None:
        return refused
    wait = await limiter.check_ip(audit.client_ip(request) or "unknown")
    if wait is not None:
        return _fail(429, "Too many requests", "from this address", headers={"Retry-After": str(wait)})
    body = await _read_body(request)
    if body is None:
        return _fail(413, "Batch too large", f"at most {MAX_BODY_BYTES} bytes")
    batch = _parse(body, settings.ingest_max_event_age_days)
    if isinstance(batch, Response):
        return batch
    async with request.app.state.sessionmaker() as db:
        site = await cache.by_key(db, batch.site_key)
        refused = await _refuse_for_site(site, batch, origin, limiter)
        if refused is not None:
            return refused
        assert site is not None and origin is not None  # checked by _refuse_for_site
        result = await _store(request, db, site, batch, settings.clarity_player_base_url)
        if result is None:
            return _fail(500, "Could not store the batch", "nothing was stored; retry later", origin=origin)
    INGEST_BATCHES.labels("202").inc()
    return JSONResponse(result.model_dump(), status_code=202, headers=_cors(origin))


def _refuse_headers(request: Request) -> Response | None:
    """415 for a body that is not JSON, 400/413 for a Content-Length that is not a number or too big."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ALLOWED_TYPES:
        return _fail(
            415, "Unsupported media type", "send JSON as application/json or text/plain", field="content-type"
        )
    length = request.headers.get("content-length")
    if length is not None:
        if not length.isdigit():
            return _fail(400, "Invalid Content-Length", field="content-length")
        if int(length) > MAX_BODY_BYTES:
            return _fail(413, "Batch too large", f"at most {MAX_BODY_BYTES} bytes")
    return None


def _parse(body: bytes, max_event_age_days: int) -> IngestBatch | Response:
    """The batch, or a 400 naming the first field that is wrong."""
    try:
        batch = IngestBatch.model_validate_json(body)
    except ValidationError as exc:
        errors = [{**e, "field": _field(e["field"])} for e in validation_errors(exc)]
        first = errors[0] if errors else {"field": "body", "message": "invalid"}
        return _fail(
            400, "Invalid batch", f"{first['field']}: {first['message']}", field=first["field"], errors=errors
        )
    bad_time = check_event_times(batch, max_event_age_days)
    if bad_time:
        return _fail(400, "Invalid batch", f"{bad_time}: too far in the past or future", field=bad_time)
    return batch


async def _refuse_for_site(
    site: sites.SiteInfo | None, batch: IngestBatch, origin: str | None, limiter: IngestLimiter
) -> Response | None:
    """401 for an unknown or revoked key, 403 for another origin or no consent, 429 over the site's
    rate, 400 without a Clarity project; fills the site's project in when the batch has none."""
    if site is None or not site.active:
        return _fail(401, "Unknown site key", "the site key is unknown or revoked", field="siteKey")
    if not origin or origin not in site.allowed_origins:
        return _fail(403, "Origin not allowed", "this site key does not accept events from this origin")
    wait = await limiter.check_site(str(site.id))
    if wait is not None:
        return _fail(
            429, "Too many requests", "for this site key", origin=origin, headers={"Retry-After": str(wait)}
        )
    if not batch.clarity.project_id:
        if not site.clarity_project_id:
            return _fail(
                400,
                "Invalid batch",
                "clarity.projectId: required for this site",
                origin=origin,
                field="clarity.projectId",
            )
        batch.clarity.project_id = site.clarity_project_id
    consented = batch.consent.analytics if batch.consent is not None else None
    if consented is False or (site.require_consent and consented is not True):
        return _fail(
            403,
            "No consent",
            "the visitor has not consented to analytics",
            origin=origin,
            field="consent.analytics",
        )
    return None


async def _store(
    request: Request, db: AsyncSession, site: sites.SiteInfo, batch: IngestBatch, player_base_url: str
) -> IngestResult | None:
    """Store the batch, replayed as a whole on a transient database error; None when it could not be."""
    result = None
    try:
        # Replayed after a short random pause, so two batches that collided do not collide again at once.
        async for attempt in AsyncRetrying(
            stop=stop_after_attempt(RETRIES),
            wait=wait_random(0.02, 0.25),
            retry=retry_if_exception_type(DBAPIError),
            reraise=True,
        ):
            with attempt:
                try:
                    result = await ingest_batch(
                        db,
                        site,
                        batch,
                        client_ip=audit.client_ip(request),
                        user_agent=request.headers.get("user-agent"),
                        player_base_url=player_base_url,
                    )
                except Exception:
                    await db.rollback()
                    raise
    except DBAPIError as exc:
        log.warning("ingest conflict", error=str(exc.orig)[:200])
    except Exception:
        log.exception("ingest failed")
    return result


# ---- admin: sites ------------------------------------------------------------------------------------


async def _sites_page(request: Request, db: DbDep, **extra: Any) -> HTMLResponse:
    status = extra.pop("status_code", 200)
    ctx: dict[str, Any] = {
        "sites": await sites.list_sites(db),
        "automated": await sites.automated_counts(db),
        "automated_days": sites.AUTOMATED_WINDOW_DAYS,
        "created_key": None,
        "error": None,
        "form": {},
    }
    ctx.update(extra)
    return render(request, "admin/sites.html", ctx, status_code=status)


@router.get("/admin/sites", response_class=HTMLResponse, include_in_schema=False)
async def admin_sites(request: Request, db: DbDep, principal: AdminPrincipal) -> HTMLResponse:
    return await _sites_page(request, db)


@router.post("/admin/sites", response_class=HTMLResponse, include_in_schema=False)
async def admin_sites_create(
    request: Request,
    db: DbDep,
    principal: AdminPrincipal,
    name: Annotated[str, Form(max_length=200)] = "",
    origins: Annotated[str, Form(max_length=2000)] = "",
    clarity_project: Annotated[str, Form(max_length=64)] = "",
    require_consent: Annotated[str, Form(max_length=8)] = "",
) -> HTMLResponse:
    form = {"name": name, "origins": origins, "clarity_project": clarity_project}
    try:
        site, key = await sites.create_site(
            db,
            name=name,
            origins=[o for o in origins.replace(",", " ").split() if o],
            clarity_project_id=clarity_project,
            require_consent=bool(require_consent),
        )
    except sites.SiteError as exc:
        return await _sites_page(request, db, error=f"{exc.field}: {exc.message}", form=form, status_code=400)
    await audit.record(
        db,
        "site_created",
        request=request,
        actor=principal.agent,
        target_type="site",
        target=str(site.id),
        detail={"name": site.name, "origins": site.allowed_origins, "key_prefix": site.key_prefix},
    )
    return await _sites_page(request, db, created_key=key, created_site=site)


@router.post("/admin/sites/{site_id}/revoke", include_in_schema=False)
async def admin_sites_revoke(
    request: Request, db: DbDep, principal: AdminPrincipal, site_id: uuid.UUID
) -> Response:
    site = await sites.revoke_site(db, site_id)
    if site is None:
        raise ProblemError(404, "Site not found", field="site_id")
    await audit.record(
        db,
        "site_revoked",
        request=request,
        actor=principal.agent,
        target_type="site",
        target=str(site.id),
        detail={"name": site.name, "key_prefix": site.key_prefix},
    )
    return RedirectResponse("/admin/sites", status_code=303)
