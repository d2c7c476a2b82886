"""Role changes on /admin/agents: admin only, CSRF, audited, the last admin stays an admin."""

from __future__ import annotations

from sqlalchemy import select

from supportlens.audit.models import AuditEntry
from supportlens.auth import service
from tests.support.agents import make_agent


async def test_admin_changes_a_role_and_it_is_audited(signed_in, sessionmaker, db):
    admin = await signed_in("admin")
    target = await make_agent(sessionmaker, "viewer", email="vera@example.com")
    resp = await admin.client.post(
        f"/admin/agents/{target.id}/role", data={"role": "agent", "csrf_token": admin.csrf}
    )
    assert resp.status_code == 303 and "notice=" in resp.headers["location"]
    assert (await service.get_agent_by_email(db, "vera@example.com")).role == "agent"
    entry = (await db.scalars(select(AuditEntry).where(AuditEntry.action == "role_change"))).one()
    assert entry.detail["from"] == "viewer" and entry.detail["to"] == "agent"
    assert entry.actor_email == admin.agent.email and entry.target == str(target.id)
    page = await admin.client.get(resp.headers["location"], headers={"Accept": "text/html"})
    assert "vera@example.com is now agent." in page.text


async def test_role_change_needs_csrf_and_admin(signed_in, sessionmaker, db):
    target = await make_agent(sessionmaker, "viewer", email="vera@example.com")
    admin = await signed_in("admin")
    no_csrf = await admin.client.post(f"/admin/agents/{target.id}/role", data={"role": "admin"})
    assert no_csrf.status_code == 403
    agent = await signed_in("agent")
    forbidden = await agent.client.post(
        f"/admin/agents/{target.id}/role", data={"role": "admin", "csrf_token": agent.csrf}
    )
    assert forbidden.status_code == 403
    bad = await admin.client.post(
        f"/admin/agents/{target.id}/role", data={"role": "root", "csrf_token": admin.csrf}
    )
    assert bad.status_code == 400 and bad.json()["field"] == "role"
    db.expire_all()
    assert (await service.get_agent_by_email(db, "vera@example.com")).role == "viewer"


async def test_the_last_admin_cannot_be_demoted(signed_in, db):
    admin = await signed_in("admin")
    resp = await admin.client.post(
        f"/admin/agents/{admin.agent.id}/role", data={"role": "viewer", "csrf_token": admin.csrf}
    )
    assert resp.status_code == 409 and resp.json()["field"] == "role"
    db.expire_all()
    assert (await service.get_agent_by_email(db, admin.agent.email)).role == "admin"
    denied = (await db.scalars(select(AuditEntry).where(AuditEntry.action == "role_change"))).one()
    assert denied.outcome == "denied"
    # With a second admin, demotion works
    second = await signed_in("admin", email="second-admin@example.com")
    ok = await second.client.post(
        f"/admin/agents/{admin.agent.id}/role", data={"role": "agent", "csrf_token": second.csrf}
    )
    assert "notice=" in ok.headers["location"]
    db.expire_all()
    assert (await service.get_agent_by_email(db, admin.agent.email)).role == "agent"
