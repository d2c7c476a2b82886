"""Inviting agents from /admin/agents, and the one-time set-password link they are given."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta

import httpx2
from sqlalchemy import func, select, update

from supportlens.audit.models import AuditEntry
from supportlens.auth import service
from supportlens.auth.models import Agent, PasswordLink
from supportlens.auth.tokens import hash_secret
from supportlens.db.base import utcnow
from tests.support.agents import csrf_from, sign_in

NEW_PASSWORD = "a long enough new password"
HTML = {"Accept": "text/html"}


def _link_from(html: str) -> str:
    m = re.search(r'id="password-link"[^>]*value="([^"]+)"', html)
    assert m, "no set-password link on the page"
    return m.group(1)


def _path(link: str) -> str:
    return "/set-password/" + link.rsplit("/set-password/", 1)[1]


def _anonymous(app) -> httpx2.AsyncClient:
    transport = httpx2.ASGITransport(app=app, client=("127.0.0.1", 50002))
    return httpx2.AsyncClient(transport=transport, base_url="http://testserver")


async def _invite(admin, **fields):
    data = {"email": "nina@example.com", "role": "agent", "sign_in": "link", "csrf_token": admin.csrf}
    data.update(fields)
    return await admin.client.post("/admin/agents/invite", data=data, headers=HTML)


async def _set_password(client, path: str, password: str = NEW_PASSWORD, confirm: str | None = None):
    page = await client.get(path)
    token = csrf_from(page.text) if page.status_code == 200 else "x"
    return await client.post(
        path,
        data={"password": password, "password_confirm": confirm or password, "csrf_token": token},
    )


async def test_invite_with_a_link_shown_once_stored_as_a_hash_then_set_password_and_sign_in(
    app, signed_in, db
):
    admin = await signed_in("admin")
    resp = await _invite(admin, email="  Nina@Example.COM ", name="Nina")
    assert resp.status_code == 201
    assert resp.headers["cache-control"] == "no-store"
    link = _link_from(resp.text)
    assert link.startswith("http://127.0.0.1:8000/set-password/slp_")
    raw = link.rsplit("/", 1)[1]

    agent = await service.get_agent_by_email(db, "nina@example.com")
    assert agent is not None and agent.email == "nina@example.com" and agent.role == "agent"
    assert agent.password_hash is None
    stored = (await db.scalars(select(PasswordLink))).one()
    assert stored.token_hash == hash_secret(raw) and raw not in stored.token_hash
    assert timedelta(hours=71) < stored.expires_at - utcnow() <= timedelta(hours=72)
    invited = (await db.scalars(select(AuditEntry).where(AuditEntry.action == "agent_invited"))).one()
    assert invited.actor_email == admin.agent.email and invited.target == str(agent.id)
    assert invited.detail == {"role": "agent", "sign_in": "link"}
    assert raw not in str(invited.detail)

    # The page afterwards lists the invitation without the link.
    listing = await admin.client.get("/admin/agents", headers=HTML)
    assert "link pending until" in listing.text and raw not in listing.text

    async with _anonymous(app) as nina:
        form = await nina.get(_path(link))
        assert form.status_code == 200 and "nina@example.com" in form.text
        done = await _set_password(nina, _path(link))
        assert done.status_code == 303 and done.headers["location"] == "/login?password_set=1"
        assert "Your password is set" in (await nina.get(done.headers["location"])).text
        await sign_in(nina, "nina@example.com", NEW_PASSWORD)
        me = await nina.get("/api/me")
        assert me.json()["email"] == "nina@example.com" and me.json()["role"] == "agent"

    db.expire_all()
    assert (await db.scalars(select(PasswordLink))).one().used_at is not None
    entry = (await db.scalars(select(AuditEntry).where(AuditEntry.action == "password_set"))).one()
    assert entry.actor_email == "nina@example.com"


async def test_the_link_is_dead_after_use(app, signed_in):
    admin = await signed_in("admin")
    link = _link_from((await _invite(admin)).text)
    async with _anonymous(app) as first, _anonymous(app) as second:
        page = await second.get(_path(link))  # opened in a second tab before the first one submits
        assert (await _set_password(first, _path(link))).status_code == 303
        again = await second.post(
            _path(link),
            data={
                "password": "someone else's password",
                "password_confirm": "someone else's password",
                "csrf_token": csrf_from(page.text),
            },
        )
        assert again.status_code == 410 and "does not work any more" in again.text
        assert (await second.get(_path(link))).status_code == 410
        await sign_in(first, "nina@example.com", NEW_PASSWORD)


async def test_the_link_is_dead_after_expiry(app, signed_in, db):
    admin = await signed_in("admin")
    link = _link_from((await _invite(admin)).text)
    await db.execute(update(PasswordLink).values(expires_at=utcnow() - timedelta(seconds=1)))
    await db.commit()
    async with _anonymous(app) as nina:
        assert (await nina.get(_path(link))).status_code == 410
        resp = await nina.post(
            _path(link), data={"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD, "csrf_token": "x"}
        )
        assert resp.status_code == 410
    db.expire_all()
    assert (await service.get_agent_by_email(db, "nina@example.com")).password_hash is None


async def test_password_rules_csrf_and_a_newer_link(app, signed_in, db):
    admin = await signed_in("admin")
    old = _link_from((await _invite(admin)).text)
    async with _anonymous(app) as nina:
        short = await _set_password(nina, _path(old), password="too short")
        assert short.status_code == 400 and "at least 12 characters" in short.text
        differ = await _set_password(nina, _path(old), confirm="a different long password")
        assert differ.status_code == 400 and "differ" in differ.text
        no_csrf = await nina.post(
            _path(old), data={"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD}
        )
        assert no_csrf.status_code == 403
        assert (await nina.get(_path(old))).status_code == 200  # refused attempts do not use the link up

        agent = await service.get_agent_by_email(db, "nina@example.com")
        fresh = await admin.client.post(
            f"/admin/agents/{agent.id}/password-link", data={"csrf_token": admin.csrf}, headers=HTML
        )
        assert fresh.status_code == 201
        assert (await nina.get(_path(old))).status_code == 410
        assert (await _set_password(nina, _path(_link_from(fresh.text)))).status_code == 303
    assert (await db.scalar(select(func.count()).select_from(PasswordLink))) == 2


async def test_sso_only_invite_needs_single_sign_on(app, signed_in, db):
    admin = await signed_in("admin")
    off = await admin.client.post(
        "/admin/agents/invite",
        data={"email": "sam@example.com", "role": "viewer", "sign_in": "sso", "csrf_token": admin.csrf},
    )
    assert off.status_code == 400 and off.json()["field"] == "sign_in"
    assert await service.get_agent_by_email(db, "sam@example.com") is None

    app.state.settings = app.state.settings.model_copy(update={"oidc_enabled": True})
    on = await _invite(admin, email="sam@example.com", role="viewer", sign_in="sso")
    assert on.status_code == 303 and "single+sign-on" in on.headers["location"]
    sam = await service.get_agent_by_email(db, "sam@example.com")
    assert sam is not None and sam.role == "viewer" and sam.active and sam.password_hash is None
    assert (await db.scalar(select(func.count()).select_from(PasswordLink))) == 0


async def test_invalid_and_duplicate_invites_store_nothing(signed_in, db):
    admin = await signed_in("admin")
    await signed_in("agent", email="taken@example.com")
    before = await db.scalar(select(func.count()).select_from(Agent))
    for fields, status, field in (
        ({"email": "not-an-email"}, 400, "email"),
        ({"email": "x@example.com", "role": "root"}, 400, "role"),
        ({"email": "x@example.com", "sign_in": "magic"}, 400, "sign_in"),
        ({"email": " TAKEN@example.com"}, 409, "email"),
    ):
        data = {"email": "", "role": "agent", "sign_in": "link", "csrf_token": admin.csrf, **fields}
        resp = await admin.client.post("/admin/agents/invite", data=data)
        assert resp.status_code == status, (fields, resp.text)
        assert resp.json()["field"] == field
    too_long = await admin.client.post(
        "/admin/agents/invite",
        data={
            "email": "a" * 400 + "@example.com",
            "role": "agent",
            "sign_in": "link",
            "csrf_token": admin.csrf,
        },
    )
    assert too_long.status_code == 400 and too_long.json()["field"] == "email"
    duplicate_page = await _invite(admin, email="taken@example.com")
    assert (
        duplicate_page.status_code == 409
        and "taken@example.com already has an account" in duplicate_page.text
    )
    assert await db.scalar(select(func.count()).select_from(Agent)) == before
    assert await db.scalar(select(func.count()).select_from(PasswordLink)) == 0
    assert (await db.scalars(select(AuditEntry).where(AuditEntry.action == "agent_invited"))).all() == []


async def test_invite_needs_csrf_and_the_admin_role_and_escapes_names(signed_in, db):
    admin = await signed_in("admin")
    data = {"email": "nina@example.com", "role": "agent", "sign_in": "link"}
    assert (await admin.client.post("/admin/agents/invite", data=data)).status_code == 403
    agent = await signed_in("agent")
    refused = await agent.client.post("/admin/agents/invite", data={**data, "csrf_token": agent.csrf})
    assert refused.status_code == 403
    assert await service.get_agent_by_email(db, "nina@example.com") is None

    resp = await _invite(admin, name='<img src=x onerror="alert(1)">')
    assert resp.status_code == 201
    assert "<img src=x" not in resp.text and "&lt;img src=x" in resp.text


def test_a_set_password_link_is_redacted_from_log_lines():
    from supportlens.redaction import redact_text

    out = redact_text("GET http://sl.example/set-password/slp_AbCdEf0123456789-_xyz failed")
    assert "slp_AbCdEf0123456789" not in out and "/set-password/slp_[redacted]" in out


async def test_the_same_email_invited_twice_at_once_makes_one_account(signed_in, db):
    first = await signed_in("admin")
    second = await signed_in("admin", email="second-admin@example.com")
    for round_ in range(3):
        email = f"twice{round_}@example.com"
        answers = await asyncio.gather(
            *(
                admin.client.post(
                    "/admin/agents/invite",
                    data={"email": email, "role": "agent", "sign_in": "link", "csrf_token": admin.csrf},
                )
                for admin in (first, second)
            )
        )
        assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
        refused = next(a for a in answers if a.status_code == 409)
        assert refused.json()["field"] == "email"
        assert await db.scalar(select(func.count()).select_from(Agent).where(Agent.email == email)) == 1
        assert await db.scalar(select(func.count()).select_from(PasswordLink)) == round_ + 1
