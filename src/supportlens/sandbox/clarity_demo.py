"""Demo wiring for Clarity: the simulator on port+3, the app pointed at it, recordings enrichment on.

The demo shop's tracker uploads to its own origin's /collect; the shop may forward those uploads
to the simulator (``SUPPORTLENS_DEMO_CLARITY_UPLOAD_URL`` or ``forward_upload(body)`` in-process) so
the recordings list reflects real tracker sessions. Sessions the demo seed wrote to the database
are read by the simulator too (Clarity would have recorded them).
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from supportlens.sandbox.clarity import ClaritySimState, SimSession, create_clarity_simulator
from supportlens.sandbox.clarity.simulator import demo_sessions_from_rows
from supportlens.sandbox.demo import DemoContext, DemoServer

DEMO_PROJECT = "demo123"
DEMO_TOKEN = "demo-clarity-export-token"  # noqa: S105 (the simulator's token, demo only)
DEMO_STATE: ClaritySimState | None = None


def forward_upload(body: bytes) -> bool:
    """For the demo shop: hand a clarity-js upload to the simulator in-process."""
    return DEMO_STATE.record_upload(body) if DEMO_STATE is not None else False


class _Row:
    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)


def _loader(db_path: Path) -> Any:
    def load() -> list[SimSession]:
        if not db_path.exists():
            return []
        since = (datetime.now(UTC) - timedelta(days=3)).strftime("%Y-%m-%d %H:%M:%S")
        conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
        conn.row_factory = sqlite3.Row
        try:
            rows = conn.execute(
                "SELECT clarity_project_id, clarity_user_id, clarity_session_id, session_start,"
                " duration_seconds, click_count, rage_click_count, dead_click_count, entry_url, exit_url"
                " FROM user_sessions"
                " WHERE session_start >= ? ORDER BY session_start DESC LIMIT 2000",
                (since,),
            ).fetchall()
        except sqlite3.Error:
            return []
        finally:
            conn.close()
        out = []
        for r in rows:
            values = dict(r)
            start = datetime.fromisoformat(str(values["session_start"]))
            values["session_start"] = start if start.tzinfo else start.replace(tzinfo=UTC)
            out.append(_Row(values))
        return demo_sessions_from_rows(out)

    return load


def configure(ctx: DemoContext) -> None:
    global DEMO_STATE
    port = ctx.port + 3
    sim_url = f"http://{ctx.host}:{port}"
    state = ClaritySimState(
        token=DEMO_TOKEN,
        project_id=DEMO_PROJECT,
        site_origin=f"http://{ctx.host}:{ctx.port + 4}",
        session_loader=_loader(ctx.data_dir / "supportlens.db"),
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
            "SUPPORTLENS_JOBS_TICK_SECONDS": "5",
            "SUPPORTLENS_DEMO_CLARITY_UPLOAD_URL": f"{sim_url}/collect",
        }
    )
    ctx.notes.append(
        f"clarity:  simulator {sim_url} (project {DEMO_PROJECT}); connection page /admin/clarity"
    )
