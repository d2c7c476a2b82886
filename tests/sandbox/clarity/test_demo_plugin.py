"""The demo wiring: simulator server, settings pointing at it, recordings from the demo's sessions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from supportlens.config import Settings
from supportlens.sessions.models import UserSession
from supportlens_sandbox import clarity_demo
from supportlens_sandbox.demo import PLUGINS, DemoContext


async def test_demo_plugin_wires_the_simulator(tmp_path, database_url, db):
    assert "supportlens_sandbox.clarity_demo" in PLUGINS
    ctx = DemoContext(host="127.0.0.1", port=8100, data_dir=tmp_path)
    clarity_demo.configure(ctx)
    [server] = ctx.servers
    assert server.port == 8103
    settings = Settings(
        _env_file=None,
        **{
            k.removeprefix("SUPPORTLENS_").lower(): v
            for k, v in ctx.env.items()
            if k.startswith("SUPPORTLENS_CLARITY_")
        },
    )
    assert settings.clarity_export_base_url == "http://127.0.0.1:8103"
    assert settings.clarity_recordings_enabled and settings.clarity_project_id == "demo123"

    ctx.env["SUPPORTLENS_DATABASE_URL"] = database_url  # what demo.prepare settles on
    now = datetime.now(UTC)
    db.add(
        UserSession(
            id=uuid.uuid4(),
            clarity_project_id="demo123",
            clarity_user_id="u1",
            clarity_session_id="s1",
            session_start=now - timedelta(hours=1),
            session_end=now - timedelta(minutes=50),
            duration_seconds=600,
            click_count=9,
            rage_click_count=3,
            entry_url="http://127.0.0.1:8104/",
            exit_url="http://127.0.0.1:8104/pay",
        )
    )
    await db.commit()
    state = clarity_demo.DEMO_STATE
    [item] = state.recordings(now - timedelta(days=1), now, 10, 0)
    assert item["link"].endswith("/player/demo123/u1/s1") and item["sessionClickCount"] == 9
    assert [p["url"] for p in item["timeline"]] == ["http://127.0.0.1:8104/", "http://127.0.0.1:8104/pay"]
    assert sum(1 for e in item["timeline"][-1]["timelineEvents"] if e["eventtype"] == "Rage clicks") == 3
    assert clarity_demo.forward_upload(b"not a clarity payload") is False
