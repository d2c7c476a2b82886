"""Login, logout, idle expiry, CSRF, roles and API tokens through the real HTTP stack."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from supportlens.audit.models import AuditEntry
from supportlens.auth import service
from supportlens.auth.models import AgentSession, ApiToken
from supportlens.db.base import utcnow
from tests.support.agents import PASSWORD, csrf_from, make_agent, sign_in


async def test_pages_need_login(client):
    resp = await client.get("/", headers={"Accept": "text/html"})
    assert resp.status_code == 303
    assert resp.headers["location"].startswith("/login?next=")
    api = await client.get("/api/me")
    assert api.status_code == 401
    assert api.headers["content-type"].startswith("application/problem+json")


async def test_login_success_sets_secure_cookie_and_audits(client, sessionmaker, db):
    agent = await make_agent(sessionmaker, "agent")
    page = await client.get("/login")
    token = csrf_from(page.text)
    resp = await client.post(
        "/login",
        data={"email": agent.email.upper(), "password": PASSWORD, "csrf_token": token, "next": "/admin"},
    )
    assert resp.status_code == 303 and resp.headers["location"] == "/admin"
    cookie = resp.headers["set-cookie"]
    assert "sl_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    me = await client.get("/api/me")
    assert me.status_code == 200 and me.json()["email"] == agent.email and me.json()["via"] == "session"
    actions = (await db.scalars(select(AuditEntry.action))).all()
    assert "login" in actions


async def test_open_redirect_is_refused(client, sessionmaker):
    agent = await make_agent(sessionmaker, "agent")
    for evil in ("//evil.example", "https://evil.example/", "/\\evil.example"):
        token = csrf_from((await client.get("/login")).text)
        resp = await client.post(
            "/login", data={"email": agent.email, "password": PASSWORD, "csrf_token": token, "next": evil}
        )
        assert resp.headers["location"] == "/"


async def test_wrong_password_is_refused_and_audited(client, sessionmaker, db):
    agent = await make_agent(sessionmaker, "agent")
    token = csrf_from((await client.get("/login")).text)
    resp = await client.post("/login", data={"email": agent.email, "password": "nope", "csrf_token": token})
    assert resp.status_code == 401
    assert "Wrong e-mail or password" in resp.text
    assert "sl_session" not in resp.headers.get("set-cookie", "")
    entry = (await db.scalars(select(AuditEntry).where(AuditEntry.action == "login_failed"))).one()
    assert entry.actor_email == agent.email and entry.outcome == "denied" and entry.ip == "127.0.0.1"


async def test_unknown_email_and_empty_fields_get_clear_messages(client):
    token = csrf_from((await client.get("/login")).text)
    resp = await client.post("/login", data={"email": "", "password": "", "csrf_token": token})
    assert resp.status_code == 400 and "Enter your e-mail and password" in resp.text
    resp = await client.post("/login", data={"email": "x@y.z", "password": "pw", "csrf_token": token})
    assert resp.status_code == 401
    too_long = await client.post("/login", data={"email": "a" * 300, "password": "pw", "csrf_token": token})
    assert too_long.status_code == 400 and too_long.json()["field"] == "email"


async def test_login_form_without_csrf_is_rejected(client, sessionmaker):
    agent = await make_agent(sessionmaker, "agent")
    resp = await client.post(
        "/login", data={"email": agent.email, "password": PASSWORD, "csrf_token": "forged"}
    )
    assert resp.status_code == 403
    assert (await client.get("/api/me")).status_code == 401


async def test_logout_ends_the_session(signed_in):
    s = await signed_in("agent")
    resp = await s.client.post("/logout", data={"csrf_token": s.csrf})
    assert resp.status_code == 303 and resp.headers["location"] == "/login"
    assert (await s.client.get("/api/me")).status_code == 401


async def test_state_change_without_csrf_token_is_rejected(signed_in):
    s = await signed_in("agent")
    resp = await s.client.post("/logout")
    assert resp.status_code == 403
    assert resp.json()["field"] == "csrf_token"
    resp = await s.client.post("/logout", headers={"X-CSRF-Token": "wrong"})
    assert resp.status_code == 403
    assert (await s.client.get("/api/me")).status_code == 200  # still signed in


async def test_idle_session_expires_after_30_minutes(signed_in, db):
    s = await signed_in("agent")
    await db.execute(update(AgentSession).values(last_seen_at=utcnow() - timedelta(minutes=31)))
    await db.commit()
    assert (await s.client.get("/api/me")).status_code == 401
    page = await s.client.get("/", headers={"Accept": "text/html"})
    assert page.status_code == 303 and "expired=1" in page.headers["location"]


async def test_activity_keeps_the_session_alive(signed_in, db):
    s = await signed_in("agent")
    await db.execute(update(AgentSession).values(last_seen_at=utcnow() - timedelta(minutes=29)))
    await db.commit()
    assert (await s.client.get("/api/me")).status_code == 200
    db.expire_all()
    seen = (await db.scalars(select(AgentSession.last_seen_at))).one()
    assert utcnow() - seen < timedelta(minutes=1)


async def test_wrong_role_gets_403(signed_in):
    viewer = await signed_in("viewer")
    resp = await viewer.client.get("/admin/agents", headers={"Accept": "text/html"})
    assert resp.status_code == 403
    admin = await signed_in("admin")
    resp = await admin.client.get("/admin/agents", headers={"Accept": "text/html"})
    assert resp.status_code == 200 and admin.agent.email in resp.text


async def test_api_token_authenticates_without_csrf(client, sessionmaker, db):
    agent = await make_agent(sessionmaker, "agent")
    async with sessionmaker() as s:
        fresh = await service.get_agent_by_email(s, agent.email)
        token = await service.create_api_token(s, fresh)
    resp = await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200 and resp.json()["via"] == "token"
    stored = (await db.execute(select(ApiToken.token_hash))).scalars().all()
    assert token not in stored and len(stored) == 1  # only the hash is kept
    bad = await client.get("/api/me", headers={"Authorization": "Bearer slt_forged"})
    assert bad.status_code == 401


async def test_inactive_agent_cannot_sign_in(client, sessionmaker):
    agent = await make_agent(sessionmaker, "agent")
    async with sessionmaker() as s:
        a = await service.get_agent_by_email(s, agent.email)
        a.active = False
        await s.commit()
    token = csrf_from((await client.get("/login")).text)
    resp = await client.post("/login", data={"email": agent.email, "password": PASSWORD, "csrf_token": token})
    assert resp.status_code == 401


async def test_sign_in_helper_round_trip(client, sessionmaker):
    agent = await make_agent(sessionmaker, "admin")
    csrf = await sign_in(client, agent.email)
    assert csrf
