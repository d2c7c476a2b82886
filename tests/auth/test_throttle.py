"""Login throttling: an account locks after M failures, an IP after more; audited, clear message."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from supportlens.audit.models import AuditEntry
from supportlens.auth import service
from supportlens.auth.throttle import LoginThrottle
from tests.support.agents import PASSWORD, csrf_from, make_agent


@pytest.fixture
def settings(settings_factory):
    return settings_factory(login_max_failures=3, login_ip_max_failures=50)


async def _attempt(client, email: str, password: str):
    token = csrf_from((await client.get("/login")).text)
    return await client.post("/login", data={"email": email, "password": password, "csrf_token": token})


async def test_account_locks_after_repeated_failures_even_with_the_right_password(
    client, sessionmaker, db, settings
):
    agent = await make_agent(sessionmaker, "agent")
    for _ in range(settings.login_max_failures - 1):
        assert (await _attempt(client, agent.email, "wrong password")).status_code == 401
    locked = await _attempt(client, agent.email, "wrong password")
    assert locked.status_code == 429
    assert "locked for 15 more minutes" in locked.text
    # The right password does not get in while locked; nothing about the password is checked.
    again = await _attempt(client, agent.email, PASSWORD)
    assert again.status_code == 429 and "sl_session" not in again.headers.get("set-cookie", "")
    actions = (await db.scalars(select(AuditEntry.action).order_by(AuditEntry.id))).all()
    assert actions.count("login_failed") == settings.login_max_failures
    assert "account_locked" in actions and actions[-1] == "login_refused_locked"
    stored = await service.get_agent_by_email(db, agent.email)
    assert stored.locked_until is not None


async def test_admin_unlock_lets_the_agent_in_again(client, signed_in, sessionmaker, db, settings):
    agent = await make_agent(sessionmaker, "agent", email="locked@example.com")
    for _ in range(settings.login_max_failures):
        await _attempt(client, agent.email, "wrong password")
    assert (await _attempt(client, agent.email, PASSWORD)).status_code == 429
    admin = await signed_in("admin")
    page = await admin.client.get("/admin/agents", headers={"Accept": "text/html"})
    assert "locked" in page.text
    resp = await admin.client.post(f"/admin/agents/{agent.id}/unlock", data={"csrf_token": admin.csrf})
    assert resp.status_code == 303
    assert (await _attempt(client, agent.email, PASSWORD)).status_code == 303
    assert "account_unlocked" in (await db.scalars(select(AuditEntry.action))).all()


async def test_success_resets_the_account_counter(client, sessionmaker, settings):
    agent = await make_agent(sessionmaker, "agent")
    for _ in range(settings.login_max_failures - 1):
        await _attempt(client, agent.email, "wrong password")
    assert (await _attempt(client, agent.email, PASSWORD)).status_code == 303
    for _ in range(settings.login_max_failures - 1):
        assert (await _attempt(client, agent.email, "wrong password")).status_code == 401


async def test_one_ip_spraying_many_accounts_is_locked(settings_factory, sessionmaker, engine):
    """Credential stuffing: few tries per account, many accounts, one address."""
    import httpx2

    from supportlens.app import create_app

    app = create_app(settings_factory(login_ip_max_failures=4, login_max_failures=5))
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app, client=("203.0.113.9", 4000))
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as c:
            codes = [(await _attempt(c, f"user{i}@example.com", "guess")).status_code for i in range(5)]
        assert codes[:3] == [401] * 3 and codes[3] == 429 and codes[4] == 429
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as c2:
            refused = await _attempt(c2, "x@example.com", "guess")
        assert refused.status_code == 429 and "sign-ins from your network" in refused.text
        other = httpx2.ASGITransport(app=app, client=("198.51.100.7", 4000))
        async with httpx2.AsyncClient(transport=other, base_url="http://testserver") as c3:
            assert (await _attempt(c3, "user0@example.com", "guess")).status_code == 401


async def test_throttle_shares_state_through_redis(settings_factory):
    """With redis_url set, two replicas (two throttles) see the same failures."""
    import uuid

    settings = settings_factory(redis_url="redis://127.0.0.1:6379/15", login_max_failures=3)
    a, b = LoginThrottle(settings), LoginThrottle(settings)
    email = f"{uuid.uuid4().hex}@example.com"
    await a.failed(email, None)
    await b.failed(email, None)
    assert await a.check(email, None) is None
    lock = await b.failed(email, None)
    assert lock is not None and lock.scope == "account"
    assert (await a.check(email, None)) is not None
    await a.succeeded(email)
    assert await b.check(email, None) is None
