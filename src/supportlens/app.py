"""The FastAPI application factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from supportlens import health, metrics, problems
from supportlens.attention import views as attention_views
from supportlens.audit import views as audit_views
from supportlens.auth import account_views as auth_account_views
from supportlens.auth import admin_views as auth_admin_views
from supportlens.auth import oidc as auth_oidc
from supportlens.auth import theme as auth_theme
from supportlens.auth import views as auth_views
from supportlens.auth.deps import LoginRequired
from supportlens.capture import views as capture_views
from supportlens.config import Settings, get_settings
from supportlens.crmnotes import views as crmnotes_views
from supportlens.customers.directory import open_directory
from supportlens.db.engine import make_engine, make_sessionmaker
from supportlens.db.partitions import ensure_at_startup as ensure_event_partitions
from supportlens.insights import views as insights_views
from supportlens.integrations.clients import open_vendor_clients
from supportlens.investigation import customer_views, goal_views
from supportlens.investigation import views as investigation_views
from supportlens.issues import alert_views, compare_views, report_views
from supportlens.issues import views as issues_views
from supportlens.logging import configure_logging
from supportlens.mapping import views as mapping_views
from supportlens.middleware import RequestContextMiddleware
from supportlens.privacy import views as privacy_views
from supportlens.search import home_views
from supportlens.search import views as search_views
from supportlens.sessions import views as sessions_views
from supportlens.tasks.queue import Runtime, start_in_process_worker
from supportlens.web.pages import STATIC_DIR, wants_html


async def open_shared_resources(app: FastAPI, settings: Settings, stack: AsyncExitStack) -> None:
    """Build what requests share, each on what came before, and keep it on `app.state` (read only by the
    providers of deps.py and auth/deps.py); the stack closes it all in reverse order at shutdown."""
    state = app.state
    metrics.startup_hook(app, stack)
    await ensure_event_partitions(state.engine)
    vendors = open_vendor_clients(settings, stack)
    state.hubspot, state.dwolla = vendors.hubspot, vendors.dwolla
    state.clarity_export, state.clarity_recordings = vendors.clarity_export, vendors.clarity_recordings
    state.customer_directory = open_directory(
        settings, vendors.hubspot, vendors.dwolla, state.sessionmaker, stack
    )
    runtime = Runtime(
        settings=settings,
        engine=state.engine,
        sessionmaker=state.sessionmaker,
        dwolla=vendors.dwolla,
        clarity_export=vendors.clarity_export,
        clarity_recordings=vendors.clarity_recordings,
    )
    state.queue = await start_in_process_worker(runtime, stack)


def routers() -> list[APIRouter]:
    """Every router of the app, in order. The route x role test walks exactly these."""
    return [
        capture_views.ingest_router,  # first: most requests are sites' batches
        health.router,
        auth_views.router,
        auth_account_views.router,
        auth_admin_views.router,
        auth_oidc.router,
        audit_views.router,
        privacy_views.router,
        home_views.router,
        auth_theme.router,
        search_views.router,
        mapping_views.router,
        sessions_views.router,
        capture_views.router,
        investigation_views.router,
        customer_views.router,
        goal_views.router,
        insights_views.router,
        crmnotes_views.router,
        # Before /issues/{issue_id}: "/issues/spiking" is a page, not an issue id.
        alert_views.router,
        compare_views.router,
        report_views.router,
        issues_views.router,
        attention_views.router,
    ]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await open_shared_resources(app, settings, stack)
            if settings.gc_freeze:
                # A full collection of a worker's ~150,000 startup objects took 70 ms on the
                # development machine, a pause every request in flight waited for.
                gc.collect()
                gc.freeze()
            try:
                yield
            finally:
                await app.state.engine.dispose()

    app = FastAPI(
        title="SupportLens",
        version="0.1.0",
        description="Customer context for support agents: HubSpot, Dwolla and Clarity sessions.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = make_engine(settings)
    app.state.sessionmaker = make_sessionmaker(app.state.engine)

    app.add_exception_handler(RequestValidationError, problems.handle_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(problems.ProblemError, problems.handle_problem)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, problems.handle_http_exception)  # type: ignore[arg-type]

    async def _login_required(request: Request, exc: LoginRequired) -> Response:
        if wants_html(request):
            return auth_views.login_redirect(request, exc)
        return problems.problem_response(401, "Sign-in required", headers={"WWW-Authenticate": "Bearer"})

    app.add_exception_handler(LoginRequired, _login_required)  # type: ignore[arg-type]

    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    for router in routers():
        app.include_router(router)
    app.add_middleware(RequestContextMiddleware, settings=settings, hsts=settings.cookies_secure)
    return app
