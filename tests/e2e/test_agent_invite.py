"""Inviting an agent in Chromium: invite → open the one-time link → set a password → sign in."""

from __future__ import annotations

from tests.e2e import test_sso
from tests.e2e.conftest import DESKTOP, PHONE, browser_sign_in, new_page
from tests.e2e.test_hostile import watch_csp
from tests.e2e.test_investigation import assert_accessible, assert_fits
from tests.support.agents import PASSWORD, make_agent

NEW_PASSWORD = "a long enough new password"
sso = test_sso.sso  # the app with passwords off and a real OpenID Provider (fixture, shared)


async def test_invite_open_the_link_set_a_password_and_sign_in(
    browser, live_server, sessionmaker, artifacts_dir
):
    await make_agent(sessionmaker, "admin", email="ada@example.com")
    await make_agent(sessionmaker, "viewer", email="vic@example.com")
    admin = await new_page(browser, DESKTOP, live_server.url)
    admin_csp = watch_csp(admin)
    await browser_sign_in(admin, "ada@example.com", PASSWORD)
    await admin.goto("/admin/agents")
    await admin.fill("#invite-email", "Nina@Example.com")
    await admin.fill("#invite-name", "Nina Invitee")
    await admin.select_option("#invite-role", "agent")
    await admin.select_option("#invite-sign-in", "link")
    await admin.click("button:has-text('Invite')")
    link = await admin.locator("#password-link").input_value()
    assert "/set-password/slp_" in link
    assert "link pending until" in await admin.locator("tr[data-agent='nina@example.com']").inner_text()
    await assert_accessible(admin, "agents page with a new link")
    await admin.screenshot(path=str(artifacts_dir / "admin-agents-invite-desktop.png"), full_page=True)

    # The link names the configured base URL; the test server listens elsewhere, so follow its path.
    path = "/set-password/" + link.rsplit("/set-password/", 1)[1]
    invitee = await new_page(browser, PHONE, live_server.url)
    invitee_csp = watch_csp(invitee)
    await invitee.goto(path)
    assert "nina@example.com" in await invitee.locator(".login-card").inner_text()
    await assert_fits(invitee)
    await assert_accessible(invitee, "set-password page")
    await invitee.screenshot(path=str(artifacts_dir / "set-password-phone.png"), full_page=True)
    await invitee.fill("#password", NEW_PASSWORD)
    await invitee.fill("#password-confirm", NEW_PASSWORD)
    await invitee.click("button:has-text('Set password')")
    await invitee.wait_for_url("**/login?password_set=1")
    assert "Your password is set" in await invitee.locator(".alert-info").inner_text()
    await browser_sign_in(invitee, "nina@example.com", NEW_PASSWORD)
    assert await invitee.locator(".avatar").first.is_visible()

    # The link is dead once used.
    await invitee.goto(path)
    assert "does not work any more" in await invitee.locator(".alert-error").inner_text()

    # The admin page at phone width: the new agent signed in with a password; nothing wider than the screen.
    phone_admin = await new_page(browser, PHONE, live_server.url)
    phone_csp = watch_csp(phone_admin)
    await browser_sign_in(phone_admin, "ada@example.com", PASSWORD)
    await phone_admin.goto("/admin/agents")
    row = phone_admin.locator("tr[data-agent='vic@example.com']")
    await row.locator("button:has-text('Deactivate')").click()
    await phone_admin.wait_for_selector(".alert-info")
    assert "vic@example.com is deactivated" in await phone_admin.locator(".alert-info").inner_text()
    await assert_fits(phone_admin)
    await assert_accessible(phone_admin, "agents page at phone width")
    await phone_admin.screenshot(path=str(artifacts_dir / "admin-agents-invite-phone.png"), full_page=True)

    await admin.goto("/admin/agents")
    await admin.screenshot(path=str(artifacts_dir / "admin-agents-after-desktop.png"), full_page=True)
    for page in (admin, invitee, phone_admin):
        assert page.js_errors == []
    assert admin_csp == [] and invitee_csp == [] and phone_csp == []
    for page in (admin, invitee, phone_admin):
        await page.context.close()


async def test_sso_only_invite_then_sign_in_through_the_provider_then_deactivation(
    browser, sso, sessionmaker
):
    """With passwords off: an admin invites for single sign-on; the provider's verified e-mail signs the
    invitee in; deactivation signs them out at their next request."""
    server, _ = sso
    await make_agent(sessionmaker, "admin", email="mallory@example.com")
    admin = await new_page(browser, DESKTOP, server.url)
    await test_sso._sso_sign_in(admin, "mallory")
    await admin.wait_for_url(f"{server.url}/")
    await admin.goto("/admin/agents")
    assert await admin.locator("#invite-sign-in option").all_inner_texts() == ["Single sign-on only"]
    await admin.fill("#invite-email", "jane@example.com")
    await admin.select_option("#invite-role", "viewer")
    await admin.click("button:has-text('Invite')")
    await admin.wait_for_selector(".alert-info")
    assert "they sign in with single sign-on" in await admin.locator(".alert-info").inner_text()
    assert await admin.locator("#password-link").count() == 0

    jane = await new_page(browser, PHONE, server.url)
    await test_sso._sso_sign_in(jane, "jane")
    await jane.wait_for_url(f"{server.url}/")
    me = await jane.evaluate("fetch('/api/me').then(r => r.json())")
    assert me["email"] == "jane@example.com" and me["role"] == "viewer"

    await admin.locator("tr[data-agent='jane@example.com'] button:has-text('Deactivate')").click()
    await admin.wait_for_selector(".alert-info")
    assert "1 session(s) ended" in await admin.locator(".alert-info").inner_text()
    assert await jane.evaluate("fetch('/api/me').then(r => r.status)") == 401
    assert admin.js_errors == [] and jane.js_errors == []
    await admin.context.close()
    await jane.context.close()
