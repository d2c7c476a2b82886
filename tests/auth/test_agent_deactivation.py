"""Deactivating and reactivating agents; the guard that keeps an active administrator."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from supportlens.audit.models import AuditEntry
from supportlens.auth import service
from supportlens.auth.models import AgentSession, ApiToken, Role
from tests.support.agents import PASSWORD, csrf_from

HTML = {"Accept": "text/html"}


async def test_deactivation_ends_sessions_and_api_tokens_at_once_and_is_audited(app, signed_in, db):
    admin = await signed_in("admin")
    target = await signed_in("agent", email="ollie@example.com")
    token = await service.create_api_token(db, target.agent, name="script")
    assert (await target.client.get("/api/me")).status_code == 200
    assert (
        await target.client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    ).status_code == 200

    resp = await admin.client.post(
        f"/admin/agents/{target.agent.id}/deactivate", data={"csrf_token": admin.csrf}
    )
    assert resp.status_code == 303 and "notice=" in resp.headers["location"]

    assert (await target.client.get("/api/me")).status_code == 401
    assert (
        await target.client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    ).status_code == 401
    db.expire_all()
    sessions = (await db.scalars(select(AgentSession).where(AgentSession.agent_id == target.agent.id))).all()
    assert sessions and all(s.revoked_at is not None for s in sessions)
    assert all(t.revoked_at is not None for t in await db.scalars(select(ApiToken)))
    entry = (await db.scalars(select(AuditEntry).where(AuditEntry.action == "agent_deactivated"))).one()
    assert entry.outcome == "ok" and entry.target == str(target.agent.id)
    assert entry.detail["sessions_ended"] == 1 and entry.detail["tokens_revoked"] == 1
    page = await admin.client.get(resp.headers["location"], headers=HTML)
    assert "ollie@example.com is deactivated" in page.text and "Reactivate ollie@example.com" in page.text

    # A deactivated agent cannot sign in with the password either.
    login = await target.client.get("/login")
    refused = await target.client.post(
        "/login",
        data={"email": "ollie@example.com", "password": PASSWORD, "csrf_token": csrf_from(login.text)},
    )
    assert refused.status_code == 401

    back = await admin.client.post(
        f"/admin/agents/{target.agent.id}/reactivate", data={"csrf_token": admin.csrf}
    )
    assert back.status_code == 303
    db.expire_all()
    assert (await service.get_agent_by_email(db, "ollie@example.com")).active
    # The token ended by the deactivation stays ended.
    assert (
        await target.client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    ).status_code == 401
    assert (await db.scalars(select(AuditEntry).where(AuditEntry.action == "agent_reactivated"))).one()


async def test_deactivate_and_reactivate_need_csrf_and_the_admin_role(signed_in, db):
    admin = await signed_in("admin")
    target = await signed_in("agent", email="ollie@example.com")
    for action in ("deactivate", "reactivate", "password-link"):
        assert (await admin.client.post(f"/admin/agents/{target.agent.id}/{action}")).status_code == 403
        forbidden = await target.client.post(
            f"/admin/agents/{target.agent.id}/{action}", data={"csrf_token": target.csrf}
        )
        assert forbidden.status_code == 403
    db.expire_all()
    assert (await service.get_agent_by_email(db, "ollie@example.com")).active


async def test_an_admin_cannot_deactivate_or_demote_themself(signed_in, db):
    admin = await signed_in("admin")
    await signed_in("admin", email="other-admin@example.com")  # not the last admin: still refused
    me = admin.agent.id
    deactivate = await admin.client.post(f"/admin/agents/{me}/deactivate", data={"csrf_token": admin.csrf})
    assert deactivate.status_code == 409 and "yourself" in deactivate.json()["detail"]
    demote = await admin.client.post(
        f"/admin/agents/{me}/role", data={"role": "agent", "csrf_token": admin.csrf}
    )
    assert demote.status_code == 409 and demote.json()["field"] == "role"
    page = await admin.client.post(
        f"/admin/agents/{me}/deactivate", data={"csrf_token": admin.csrf}, headers=HTML
    )
    assert page.status_code == 409 and "You cannot deactivate yourself" in page.text
    db.expire_all()
    mine = await service.get_agent_by_email(db, admin.agent.email)
    assert mine.active and mine.role == Role.admin.value
    denied = (await db.scalars(select(AuditEntry).where(AuditEntry.outcome == "denied"))).all()
    assert {(e.action, e.detail["reason"]) for e in denied} == {
        ("agent_deactivated", "self"),
        ("role_change", "self"),
    }


async def test_two_admins_deactivating_each_other_at_once_leave_one_admin(signed_in, db):
    """The admin count locks the admins' rows, so the second deactivation sees the first."""
    for round_ in range(3):
        a = await signed_in("admin", email=f"a{round_}@example.com")
        b = await signed_in("admin", email=f"b{round_}@example.com")
        results = await asyncio.gather(
            a.client.post(f"/admin/agents/{b.agent.id}/deactivate", data={"csrf_token": a.csrf}),
            b.client.post(f"/admin/agents/{a.agent.id}/deactivate", data={"csrf_token": b.csrf}),
        )
        assert sorted(r.status_code for r in results)[0] == 303, [r.text for r in results]
        db.expire_all()
        pair = [await service.get_agent_by_email(db, x.agent.email) for x in (a, b)]
        assert sum(p.active for p in pair) == 1
        # Only those two were admins: make the survivor the only one again for the next round.
        for p in pair:
            p.role = Role.agent.value
        await db.commit()
