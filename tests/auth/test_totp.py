"""TOTP second factor: enrol (secret, otpauth URI, QR), verify at login, no replay, turn off."""

from __future__ import annotations

import re
import time

import pyotp
from sqlalchemy import select

from supportlens.audit.models import AuditEntry
from supportlens.auth import service, totp
from tests.support.agents import PASSWORD, csrf_from


def _enrol_fields(html: str) -> tuple[str, str]:
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', html).group(1).replace(" ", "")
    token = re.search(r'name="enrol_token" value="([^"]+)"', html).group(1)
    return secret, token


async def _enable(s) -> str:
    page = await s.client.get("/account/security", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "otpauth://totp/SupportLens:" in page.text and 'src="data:image/svg+xml' in page.text
    secret, token = _enrol_fields(page.text)
    bad = await s.client.post(
        "/account/totp/enable", data={"csrf_token": s.csrf, "enrol_token": token, "code": "000000"}
    )
    assert bad.status_code == 303 and "error=" in bad.headers["location"]
    ok = await s.client.post(
        "/account/totp/enable",
        data={"csrf_token": s.csrf, "enrol_token": token, "code": pyotp.TOTP(secret).now()},
    )
    assert ok.status_code == 303 and "notice=" in ok.headers["location"]
    return secret


async def test_enrol_then_login_asks_for_the_code(signed_in, client, db, settings):
    s = await signed_in("agent")
    secret = await _enable(s)
    stored = await service.get_agent_by_email(db, s.agent.email)
    # Stored encrypted, not as the base32 secret
    assert stored.totp_secret and secret not in stored.totp_secret
    assert totp.decrypt_secret(settings, stored.totp_secret) == secret

    token = csrf_from((await client.get("/login")).text)
    resp = await client.post(
        "/login", data={"email": s.agent.email, "password": PASSWORD, "csrf_token": token, "next": "/admin"}
    )
    assert resp.status_code == 303 and resp.headers["location"] == "/login/totp"
    assert "sl_session" not in resp.headers.get("set-cookie", "")
    assert (await client.get("/api/me")).status_code == 401  # not signed in between the two steps
    page = await client.get("/login/totp")
    assert page.status_code == 200 and "Enter your code" in page.text
    token = csrf_from(page.text)
    wrong = await client.post("/login/totp", data={"code": "123456", "csrf_token": token})
    assert wrong.status_code == 401 and "not right" in wrong.text
    # A code used at enrolment cannot be replayed: use the next step's code
    code = pyotp.TOTP(secret).at(time.time() + 30)
    good = await client.post("/login/totp", data={"code": code, "csrf_token": token})
    assert good.status_code == 303 and good.headers["location"] == "/admin"
    assert (await client.get("/api/me")).json()["email"] == s.agent.email
    replay = await client.post("/login/totp", data={"code": code, "csrf_token": token})
    # the pending value and the form token are spent: no second session from a replay
    assert replay.status_code in (303, 401, 403) and "sl_session" not in replay.headers.get("set-cookie", "")
    methods = [
        e.detail.get("method") for e in (await db.scalars(select(AuditEntry))).all() if e.action == "login"
    ]
    assert "password+totp" in methods
    actions = (await db.scalars(select(AuditEntry.action))).all()
    assert "totp_enabled" in actions


def test_codes_are_single_use_and_allow_one_step_of_drift():
    secret = totp.new_secret()
    t = pyotp.TOTP(secret)
    now = 1_800_000_000
    step = totp.verify_code(secret, t.at(now), at=now)
    assert step == now // 30
    assert totp.verify_code(secret, t.at(now), last_step=step, at=now) is None  # replay
    assert totp.verify_code(secret, t.at(now - 30), at=now) is not None  # 30 s drift
    assert totp.verify_code(secret, t.at(now - 90), at=now) is None
    assert totp.verify_code(secret, "12345", at=now) is None
    assert totp.verify_code(secret, "abcdef", at=now) is None


async def test_turning_it_off_needs_a_current_code(signed_in, db):
    s = await signed_in("agent")
    secret = await _enable(s)
    refused = await s.client.post("/account/totp/disable", data={"csrf_token": s.csrf, "code": "000000"})
    assert "error=" in refused.headers["location"]
    db.expire_all()
    assert (await service.get_agent_by_email(db, s.agent.email)).totp_secret
    ok = await s.client.post(
        "/account/totp/disable",
        data={"csrf_token": s.csrf, "code": pyotp.TOTP(secret).at(time.time() + 30)},
    )
    assert "notice=" in ok.headers["location"]
    db.expire_all()
    assert (await service.get_agent_by_email(db, s.agent.email)).totp_secret is None


async def test_pending_step_without_the_cookie_goes_back_to_login(client):
    assert (await client.get("/login/totp")).headers["location"] == "/login"
