"""Demo wiring for Clarity: the simulator on port+3, the app pointed at it, recordings enrichment on.

The demo shop's tracker uploads to its own origin's /collect; the shop may forward those uploads
to the simulator (``SUPPORTLENS_DEMO_CLARITY_UPLOAD_URL`` or ``forward_upload(body)`` in-process) so
the recordings list reflects real tracker sessions. Sessions the demo seed wrote to the database
are read by the simulator too (Clarity would have recorded them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from supportlens_sandbox.clarity import ClaritySimState, SimSession, create_clarity_simulator
from supportlens_sandbox.clarity.simulator import demo_sessions_from_rows
from supportlens_sandbox.demo import DemoContext, DemoServer

DEMO_PROJECT = "demo123"
DEMO_TOKEN = "demo-clarity-export-token"  # noqa: S105 (the simulator's token, demo only)
DEMO_STATE: ClaritySimState | None = None


def forward_upload(body: bytes) -> bool:
    """For the demo shop: hand a clarity-js upload to the simulator in-process."""
    return DEMO_STATE.record_upload(body) if DEMO_STATE is not None else False


async def _recent_sessions(database_url: str) -> list[Any]:
    from sqlalchemy import select
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    from supportlens.sessions.models import UserSession

    since = datetime.now(UTC) - timedelta(days=3)
    s = UserSession
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(
                select(
                    s.clarity_project_id, s.clarity_user_id, s.clarity_session_id, s.session_start,
                    s.duration_seconds, s.click_count, s.rage_click_count, s.dead_click_count,
                    s.entry_url, s.exit_url,
                )
                .where(s.session_start >= since)
                .order_by(s.session_start.desc())
                .limit(2000)
            )  # fmt: skip
            return list(result.all())
    finally:
        await engine.dispose()


def _loader(ctx: DemoContext) -> Callable[[], list[SimSession]]:
    """Sessions the demo's database holds, read with the database URL the demo settled on."""

    def load() -> list[SimSession]:
        database_url = ctx.env.get("SUPPORTLENS_DATABASE_URL")
        if not database_url:
            return []
        # The simulator asks from inside its event loop and waits for the answer: run the query on
        # a loop of its own in another thread.
        with ThreadPoolExecutor(max_workers=1) as pool:
            rows = pool.submit(asyncio.run, _recent_sessions(database_url)).result(timeout=30)
        return demo_sessions_from_rows(rows)

    return load


def configure(ctx: DemoContext) -> None:
    global DEMO_STATE
    port = ctx.port + 3
    sim_url = f"http://{ctx.host}:{port}"
    state = ClaritySimState(
        token=DEMO_TOKEN,
        project_id=DEMO_PROJECT,
        site_origin=f"http://{ctx.host}:{ctx.port + 4}",
        session_loader=_loader(ctx),
    )
    DEMO_STATE = state
    ctx.servers.append(DemoServer("Clarity simulator", create_clarity_simulator(state), port, host=ctx.host))
    ctx.env.update(
        {
            "SUPPORTLENS_CLARITY_PROJECT_ID": DEMO_PROJECT,
            "SUPPORTLENS_CLARITY_API_TOKEN": DEMO_TOKEN,
            "SUPPORTLENS_CLARITY_EXPORT_BASE_URL": sim_url,
            "SUPPORTLENS_CLARITY_RECORDINGS_BASE_URL": sim_url,
            "SUPPORTLENS_CLARITY_RECORDINGS_ENABLED": "true",
            "SUPPORTLENS_CLARITY_RECORDINGS_INTERVAL_MINUTES": "5",
            "SUPPORTLENS_CLARITY_RECORDINGS_WINDOW_MINUTES": str(3 * 24 * 60),
            "SUPPORTLENS_CLARITY_RECORDINGS_DAILY_CALLS": "300",
            "SUPPORTLENS_DEMO_CLARITY_UPLOAD_URL": f"{sim_url}/collect",
        }
    )
    ctx.notes.append(
        f"clarity:  simulator {sim_url} (project {DEMO_PROJECT}); connection page /admin/clarity"
    )
