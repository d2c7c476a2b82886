"""Single sign-on in Chromium through a real OpenID Provider (npm `oidc-provider`, started here)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from supportlens.app import create_app
from supportlens.audit.models import AuditEntry
from tests.e2e.conftest import DESKTOP, PHONE, new_page
from tests.support.agents import PASSWORD, make_agent
from tests.support.live import LiveServer, free_port
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, OidcProvider

ACCOUNTS = [
    {"sub": "jane", "email": "Jane@Example.com", "email_verified": True, "name": "Jane"},
    {"sub": "mallory", "email": "mallory@example.com", "email_verified": True, "name": "Mallory"},
    {"sub": "unverified", "email": "jane@example.com", "email_verified": False, "name": "Not Jane"},
]


@pytest.fixture
def sso(settings_factory, engine):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with OidcProvider(f"{base}/auth/oidc/callback", ACCOUNTS) as provider:
        settings = settings_factory(
            base_url=base,
            oidc_enabled=True,
            oidc_discovery_url=provider.discovery_url,
            oidc_client_id=CLIENT_ID,
            oidc_client_secret=CLIENT_SECRET,
            local_login_enabled=False,
        )
        with LiveServer(create_app(settings), port=port) as server:
            yield server, provider


async def _sso_sign_in(page, login: str) -> None:
    await page.goto("/login")
    assert await page.locator("#password").count() == 0  # passwords are turned off
    await page.click("text=Sign in with Microsoft")
    await page.wait_for_selector("input[name=login]")
    await page.fill("input[name=login]", login)
    await page.fill("input[name=password]", "any password")
    await page.click("button[type=submit]")
    # The provider asks for consent the first time
    await page.wait_for_load_state()
    if await page.locator("button:has-text('Continue')").count():
        await page.click("button:has-text('Continue')")
    await page.wait_for_load_state()


async def test_sso_lands_signed_in_and_refuses_strangers(browser, sso, sessionmaker, db, artifacts_dir):
    server, _ = sso
    await make_agent(sessionmaker, "agent", email="jane@example.com")

    page = await new_page(browser, DESKTOP, server.url)
    await page.goto("/login")
    await page.screenshot(path=str(artifacts_dir / "sso-login-desktop.png"), full_page=True)
    await _sso_sign_in(page, "jane")
    await page.wait_for_url(f"{server.url}/")
    assert await page.locator(".avatar").first.is_visible()
    me = await page.evaluate("fetch('/api/me').then(r => r.json())")
    assert me["email"] == "jane@example.com" and me["via"] == "session"
    cookies = {c["name"]: c for c in await page.context.cookies(server.url)}
    assert cookies["sl_session"]["httpOnly"] and "sl_oidc" not in cookies
    await page.screenshot(path=str(artifacts_dir / "sso-home-desktop.png"), full_page=True)
    assert page.js_errors == []
    await page.context.close()

    # No invited account: a clear refusal, audited, no session
    phone = await new_page(browser, PHONE, server.url)
    await _sso_sign_in(phone, "mallory")
    await phone.wait_for_selector("#sso-message")
    message = await phone.locator("#sso-message").inner_text()
    assert "mallory@example.com has no SupportLens account" in message
    await phone.screenshot(path=str(artifacts_dir / "sso-refused-phone.png"), full_page=True)
    status = await phone.evaluate("fetch('/api/me').then(r => r.status)")
    assert status == 401
    await phone.context.close()

    # An e-mail the provider did not verify never matches, even an invited one
    other = await new_page(browser, DESKTOP, server.url)
    await _sso_sign_in(other, "unverified")
    await other.wait_for_selector("#sso-message")
    assert "did not confirm your e-mail" in await other.locator("#sso-message").inner_text()
    await other.context.close()

    rows = (await db.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    logins = [r for r in rows if r.action == "login"]
    assert (
        len(logins) == 1
        and logins[0].detail == {"method": "sso"}
        and logins[0].actor_email == "jane@example.com"
    )
    refused = [r.detail.get("reason") for r in rows if r.action == "login_failed"]
    assert refused == ["no_account", "unverified_email"]


async def test_callback_without_our_state_is_refused(sso, db, sessionmaker):
    import httpx2

    server, _ = sso
    await make_agent(sessionmaker, "agent", email="pw@example.com")
    async with httpx2.AsyncClient(base_url=server.url) as c:
        forged = await c.get("/auth/oidc/callback?code=abc&state=forged")
        assert forged.status_code == 403 and "did not complete" in forged.text
        start = await c.get("/auth/oidc/login?next=//evil.example")
        assert start.status_code == 302
        location = start.headers["location"]
        assert "code_challenge_method=S256" in location and "nonce=" in location and "state=" in location
        cookie = start.headers["set-cookie"]
        assert "sl_oidc=" in cookie and "HttpOnly" in cookie and "Path=/auth/oidc" in cookie
        # password form is refused when local login is off, even with the right password
        page = await c.get("/login")
        assert 'name="password"' not in page.text
        token = c.cookies.get("sl_login_csrf")
        refused = await c.post(
            "/login", data={"email": "pw@example.com", "password": PASSWORD, "csrf_token": token}
        )
        assert refused.status_code == 403 and "Password sign-in is turned off" in refused.text
        assert "sl_session" not in refused.headers.get("set-cookie", "")
    rows = (await db.scalars(select(AuditEntry.action))).all()
    assert rows == ["login_failed"]
