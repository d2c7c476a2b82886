"""/admin/clarity: connection status, budget and schedule; "pull now" respects the budget."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from supportlens.audit.models import AuditEntry
from supportlens.insights import service
from tests.insights.support import running_simulator


@pytest.fixture
def sim():
    with running_simulator(site_origin="https://shop.example") as s:
        yield s


@pytest.fixture
def settings(settings_factory, sim):
    return settings_factory(**sim.settings())


def _field(html: str, testid: str) -> str:
    m = re.search(rf'<(\w+)[^>]*data-testid="{testid}"[^>]*>(.*?)</\1>', html, re.S)
    assert m, f"no {testid} on the page"
    return " ".join(re.sub(r"<[^>]+>", "", m.group(2)).split())


async def _pull(admin, schedule="url_device"):
    return await admin.client.post(
        "/admin/clarity/pull", data={"schedule": schedule}, headers=admin.headers()
    )


async def test_admin_sees_status_budget_schedule_and_pulls_now(signed_in, sim, sessionmaker):
    admin = await signed_in("admin")
    page = await admin.client.get("/admin/clarity", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert _field(page.text, "token-status") == "not pulled yet"
    assert _field(page.text, "calls-used") == "0/10"
    assert _field(page.text, "project") == "demo123"
    assert "No snapshot yet" in page.text

    resp = await _pull(admin)
    assert resp.status_code == 303 and resp.headers["location"] == "/admin/clarity?pulled=ok"
    page = await admin.client.get(resp.headers["location"], headers={"Accept": "text/html"})
    assert _field(page.text, "token-status") == "ok"
    assert _field(page.text, "calls-used") == "1/10"
    assert "Pulled: a new snapshot is stored." in page.text
    assert "manual:url_device" in _field(page.text, "latest-snapshot")
    assert 'data-path="/pay" data-verdict="site_wide"' in page.text
    assert sim.state.export_requests == 1
    async with sessionmaker() as db:
        entry = (await db.scalars(select(AuditEntry).where(AuditEntry.action == "clarity_pull_now"))).one()
        assert entry.actor_email == admin.agent.email and entry.detail["result"] == "ok"

    api = await admin.client.get("/api/admin/clarity/connection")
    assert api.status_code == 200
    body = api.json()
    assert body["status"] == "ok" and body["calls_used"] == 1 and body["budgetLeft"] == 9


async def test_unauthorized_token_shows_on_the_admin_page(signed_in, sim):
    admin = await signed_in("admin")
    sim.state.token = "rotated-in-clarity"  # our token no longer works
    resp = await _pull(admin, "traffic")
    assert resp.headers["location"].endswith("pulled=unauthorized")
    page = await admin.client.get("/admin/clarity", headers={"Accept": "text/html"})
    assert _field(page.text, "token-status") == "unauthorized"
    assert "401" in _field(page.text, "last-error")
    assert "Clarity refused the API token (401)." in page.text


async def test_quota_exhausted_shows_and_stops_pulls(signed_in, sim):
    admin = await signed_in("admin")
    sim.state.export_calls = {service.today().isoformat(): 10}  # spent by another client of the project
    resp = await _pull(admin)
    assert resp.headers["location"].endswith("pulled=quota_exhausted")
    page = await admin.client.get("/admin/clarity", headers={"Accept": "text/html"})
    assert _field(page.text, "token-status") == "quota exhausted"
    assert _field(page.text, "calls-used") == "10/10"
    assert "429" in _field(page.text, "last-error")
    assert re.search(r'<button type="submit" class="btn btn-primary"\s+disabled', page.text)
    sent = sim.state.export_requests
    resp = await _pull(admin)
    assert resp.headers["location"].endswith("pulled=budget_exhausted")
    assert sim.state.export_requests == sent


async def test_pull_now_needs_admin_and_csrf(signed_in, sim):
    agent = await signed_in("agent")
    assert (await agent.client.get("/admin/clarity", headers={"Accept": "text/html"})).status_code == 403
    assert (await _pull(agent)).status_code == 403
    admin = await signed_in("admin", email="boss@example.com")
    no_csrf = await admin.client.post("/admin/clarity/pull", data={"schedule": "traffic"})
    assert no_csrf.status_code == 403
    bad = await admin.client.post(
        "/admin/clarity/pull", data={"schedule": "everything"}, headers=admin.headers()
    )
    assert bad.status_code == 400
    assert sim.state.export_requests == 0
    home = await admin.client.get("/admin", headers={"Accept": "text/html"})
    assert 'href="/admin/clarity"' in home.text


async def test_not_configured(signed_in, settings_factory, app):
    app.state.settings = settings_factory(clarity_api_token="")
    admin = await signed_in("admin")
    page = await admin.client.get("/admin/clarity", headers={"Accept": "text/html"})
    assert _field(page.text, "token-status") == "not configured"
    assert _field(page.text, "next-pull") == "not scheduled"


async def test_scheduled_pulls_and_job_status_show(
    signed_in, settings, engine, sessionmaker, sim, monkeypatch
):
    from supportlens.tasks import schedule
    from supportlens.tasks.queue import Runtime
    from tests.support.queue import run_periodic_now

    async def broken(runtime):
        raise RuntimeError("retention could not reach the database")

    monkeypatch.setattr(schedule, "_retention", broken)
    names = [t.name for t in schedule.periodic_tasks(settings)]
    assert schedule.RECORDINGS_TASK not in names  # the recordings pull is off by default
    runtime = Runtime(settings=settings, engine=engine, sessionmaker=sessionmaker)
    await run_periodic_now(runtime, [service.pull_task_name("url_device"), schedule.RETENTION_TASK])
    admin = await signed_in("admin")
    page = await admin.client.get("/admin/clarity", headers={"Accept": "text/html"})
    assert _field(page.text, "calls-used") == "1/10"
    assert _field(page.text, "next-pull") != "not scheduled"
    rows = {
        m.group(1): m.group(0)
        for m in re.finditer(r'<tr><td class="mono"[^>]*>([\w.:]+)</td>.*?</tr>', page.text, re.S)
    }
    assert "5 0,8,16 * * *" in rows["supportlens.insights.pull.url_device"]  # three pulls a day
    assert "every 8 h" in rows["supportlens.insights.pull.url_device"]
    assert "badge-ok" in rows["supportlens.insights.pull.url_device"]
    assert "failed" in rows["supportlens.retention"]
    assert "badge" not in rows["supportlens.insights.pull.traffic"]  # not run yet
