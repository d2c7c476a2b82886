"""Every page of the app, found from its routes, in both themes: axe-core and no sideways scroll at 390 px.

The pages are not listed by hand: every GET route outside the APIs is fetched as a signed-in admin
and kept if it answers a whole HTML page. A route that answers anything else must be named in
NOT_PAGES, so a new page is swept here the day it is added.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest

from supportlens.app import create_app
from supportlens.config import Settings
from supportlens_sandbox.world import demo_world
from tests.e2e.conftest import DESKTOP, PHONE, browser_sign_in, new_page
from tests.e2e.test_investigation import assert_accessible, assert_fits
from tests.integrations.sims import Sims, sim_servers, sims  # noqa: F401 (fixtures)
from tests.investigation.seed import seed_checkout_session
from tests.issues.helpers import group_everything
from tests.issues.seed_compare import seed_comparison
from tests.security.test_route_matrix import walk
from tests.support.agents import PASSWORD, make_agent

# Machine-facing routes: never a page.
NOT_HTML_PREFIXES = ("/api/", "/sdk/", "/static", "/docs", "/openapi.json", "/healthz", "/readyz", "/metrics")
# GET routes that are not a signed-in page: fragments htmx swaps in, downloads, redirects, sign-in.
NOT_PAGES = {
    "/search/panel/{panel}",  # a panel of the search page
    "/search/history",  # the history drop-down
    "/partials/sessions",  # the sessions panel
    "/partials/attention",  # the Needs attention queue on the home page
    "/sessions/{session_id}/panel",  # a session inside the search page's dialog
    "/admin/audit/export",  # CSV download
    "/auth/oidc/login",  # redirect to the identity provider
    "/auth/oidc/callback",  # redirect back from it
    "/login",  # the sign-in form: swept signed out below
    "/set-password/{token}",  # an invited agent's one-time link: swept signed out below
    "/login/totp",  # no sign-in half-way: a redirect to /login
    "/issues/spiking",  # the home page's "Spiking now" section
    "/reports/weekly.csv",  # CSV download
    "/reports/weekly.json",  # the same report as JSON
}
SCREENSHOTS = {
    "search": "search",
    "sessions-session": "session",
    "customers-customer-journey": "journey",
    "admin-agents": "admin",
    "customers-customer-analytics": "analytics",
    "issues": "issues",
    "issues-issue": "issue",
    "issues-issue-compare": "compare",
    "admin-alerts": "alerts",
    "reports-weekly": "report",
    "home": "home",
}


@pytest.fixture
def settings(settings_factory: Any, sims: Sims) -> Settings:  # noqa: F811
    """HubSpot and Dwolla simulators (the demo world) behind the app, as in test_search.py."""
    return settings_factory(**sims.settings(), search_source_deadline_seconds=3)


async def first_issue(sessionmaker: Any) -> int:
    from sqlalchemy import text

    async with sessionmaker() as db:
        return int((await db.execute(text("SELECT min(id) FROM issues"))).scalar_one())


def fill(path: str, params: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: params[m.group(1)], path)


def slug(path: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-") or "home"


async def settle(page: Any) -> None:
    """Wait until htmx and the page scripts are done (polled: the CSP forbids wait_for_function)."""
    await page.wait_for_load_state("networkidle")
    for _ in range(200):
        busy = await page.evaluate(
            """() => document.querySelectorAll('[aria-busy=true], [data-player]:not([data-ready=true]),'
                 + ' [data-charts]:not([data-ready=true])').length"""
        )
        if not busy:
            return
        await page.wait_for_timeout(50)
    raise AssertionError(f"{page.url} did not settle")


async def discover_pages(page: Any, settings: Settings, params: dict[str, str]) -> dict[str, str]:
    """name -> URL of every whole page a signed-in admin can open."""
    pages: dict[str, str] = {}
    strays: list[str] = []
    for method, path in sorted(set(walk(create_app(settings).routes))):
        if method != "GET" or path.startswith(NOT_HTML_PREFIXES) or path in NOT_PAGES:
            continue
        url = fill(path, params)
        resp = await page.request.get(url, headers={"Accept": "text/html"}, max_redirects=0)
        whole_page = resp.status == 200 and (await resp.text()).lstrip().lower().startswith("<!doctype html")
        if whole_page:
            name = path.replace("{session_id}", "session").replace("{email}", "customer")
            pages[slug(name.replace("{issue_id}", "issue"))] = url
        else:
            strays.append(f"GET {path} -> {resp.status}")
    assert not strays, "routes that are neither a page nor listed in NOT_PAGES:\n  " + "\n  ".join(strays)
    return pages


async def set_theme_with_the_toggle(page: Any, theme: str) -> None:
    await page.goto("/account/security")
    await page.click(".account-menu summary")
    label = theme.title()
    async with page.expect_response(lambda r: r.url.endswith("/account/theme")) as saved:
        await page.click(f"[data-theme-form] button:text-is('{label}')")
    assert (await saved.value).status == 204
    assert await page.get_attribute("html", "data-theme") == theme  # at once, without a reload
    await page.reload()
    assert await page.get_attribute("html", "data-theme") == theme  # and kept on the agent


async def background(page: Any) -> str:
    return str(await page.evaluate("() => getComputedStyle(document.body).backgroundColor"))


LIGHT_BG, DARK_BG = "rgb(245, 247, 251)", "rgb(15, 20, 32)"


async def test_every_page_in_both_themes_at_both_widths(
    browser, live_server, sessionmaker, settings, artifacts_dir
):
    jane = next(c for c in demo_world().customers if c.email == "jane@acme.io")
    seeded = await seed_checkout_session(
        sessionmaker, start=jane.failed_transfers[0].created - timedelta(seconds=360.5)
    )
    await make_agent(sessionmaker, "admin", email="ada@example.com")
    await group_everything(sessionmaker)
    issue_id = await seed_comparison(sessionmaker, seeded.id, jane.failed_transfers[0].created)
    params = {
        "session_id": str(seeded.id),
        "email": quote("jane@acme.io"),
        "panel": "hubspot",
        "issue_id": str(issue_id),
    }

    desktop = await new_page(browser, DESKTOP, live_server.url)
    await browser_sign_in(desktop, "ada@example.com", PASSWORD)
    pages = await discover_pages(desktop, settings, params)
    # the enumeration found the pages we know of (it is not vacuous)
    for known in (
        "home",
        "sessions-session",
        "customers-customer-journey",
        "admin",
        "admin-agents",
        "account-security",
        "issues",
        "issues-issue",
    ):
        assert known in pages, sorted(pages)
    pages["search"] = "/?q=" + quote("jane@acme.io")
    # the error page: no route, so no agent is looked up and it follows the browser ("system")
    pages["not-found"] = "/no-such-page"

    phone = await new_page(browser, PHONE, live_server.url)
    await browser_sign_in(phone, "ada@example.com", PASSWORD)
    try:
        for theme in ("light", "dark"):
            await set_theme_with_the_toggle(desktop, theme)
            for page, width in ((desktop, "desktop"), (phone, "phone")):
                await page.emulate_media(reduced_motion="reduce", color_scheme=theme)
                for name, url in sorted(pages.items()):
                    await page.goto(url)
                    await settle(page)
                    expected = "system" if name == "not-found" else theme
                    assert await page.get_attribute("html", "data-theme") == expected, name
                    assert await background(page) == (DARK_BG if theme == "dark" else LIGHT_BG), name
                    if name in SCREENSHOTS:
                        shot = artifacts_dir / f"theme-{SCREENSHOTS[name]}-{theme}-{width}.png"
                        await page.screenshot(path=str(shot), full_page=True)
                    await assert_fits(page)
                    await assert_accessible(page, f"{name} ({theme}, {width})")
                    if width == "phone":
                        await assert_tables_stacked(page, name)
                    if name == "search" and width == "phone":  # the transfers table, the issue's example
                        await page.click("#tab-dwolla")
                        assert await page.locator("[data-testid=transfers]").is_visible()
                        await assert_tables_stacked(page, "search, Dwolla tab")
                        await assert_fits(page)
                        await page.screenshot(
                            path=str(artifacts_dir / f"theme-search-dwolla-{theme}-phone.png"), full_page=True
                        )
        # signed out: the public pages, in the browser's own scheme
        for scheme, bg in (("light", LIGHT_BG), ("dark", DARK_BG)):
            anon = await new_page(browser, PHONE, live_server.url)
            try:
                await anon.emulate_media(color_scheme=scheme)
                for url in ("/login", "/set-password/an-unknown-link"):
                    await anon.goto(url)
                    assert await background(anon) == bg, url
                    await assert_fits(anon)
                    await assert_accessible(anon, f"{url} ({scheme})")
            finally:
                await anon.context.close()
        assert desktop.js_errors == [] and phone.js_errors == []
    finally:
        await desktop.context.close()
        await phone.context.close()


async def assert_tables_stacked(page: Any, name: str) -> None:
    """At 390 px every data table is a stack of rows, each cell labelled with its column's heading."""
    problems = await page.evaluate(
        """() => {
          const out = [];
          for (const table of document.querySelectorAll('table')) {
            if (!table.offsetParent) continue;  // in a closed <details> or a hidden tab
            const heads = [...table.querySelectorAll('thead th')].map(th => th.textContent.trim());
            for (const tr of table.querySelectorAll('tbody tr')) {
              if (getComputedStyle(tr).display !== 'block') { out.push('row not stacked'); break; }
              [...tr.children].forEach((td, i) => {
                if (td.colSpan > 1) return;
                const label = td.getAttribute('data-label');
                if (label === null) out.push('cell ' + i + ' without data-label under ' + heads[i]);
                else if (label && label !== heads[i]) out.push('data-label ' + label + ' under ' + heads[i]);
                else if (label && td.offsetParent) {  // the label has its own room, left of the value
                  const room = parseFloat(getComputedStyle(td).paddingLeft);
                  const labelWidth = parseFloat(getComputedStyle(td, '::before').width);
                  if (room < labelWidth) out.push(heads[i] + ': label overlaps the value');
                }
              });
            }
          }
          return out;
        }"""
    )
    assert problems == [], f"{name}: {problems}"


async def test_system_follows_the_browser_before_first_paint(browser, live_server, sessionmaker):
    """ "System" is the default: the stylesheet alone picks the scheme, so no script runs before paint."""
    await make_agent(sessionmaker, "agent", email="sys@example.com")
    for scheme, bg in (("dark", DARK_BG), ("light", LIGHT_BG)):
        page = await new_page(browser, DESKTOP, live_server.url)
        try:
            await page.emulate_media(color_scheme=scheme)
            await browser_sign_in(page, "sys@example.com", PASSWORD)
            await page.route("**/*.js", lambda route: route.abort())  # no JS at all
            await page.goto("/account/security")
            assert await page.get_attribute("html", "data-theme") == "system"
            assert await background(page) == bg
        finally:
            await page.context.close()


async def test_pinned_theme_overrides_the_browser(browser, live_server, sessionmaker, artifacts_dir):
    await make_agent(sessionmaker, "agent", email="pin@example.com")
    page = await new_page(browser, DESKTOP, live_server.url)
    try:
        await page.emulate_media(color_scheme="dark")
        await browser_sign_in(page, "pin@example.com", PASSWORD)
        await set_theme_with_the_toggle(page, "light")
        assert await background(page) == LIGHT_BG
        await page.click(".account-menu summary")
        await page.screenshot(path=str(artifacts_dir / "theme-account-menu-light-desktop.png"))
        await page.route("**/*.js", lambda route: route.abort())
        await page.reload()  # the server's <html data-theme> alone, before any script
        assert await background(page) == LIGHT_BG
    finally:
        await page.context.close()


async def test_no_table_is_cut_between_phone_and_desktop(browser, live_server, sessionmaker, settings):
    """Between stacked rows (<= 600 px) and a wide screen: search panels side by side, small laptops."""
    jane = next(c for c in demo_world().customers if c.email == "jane@acme.io")
    seeded = await seed_checkout_session(
        sessionmaker, start=jane.failed_transfers[0].created - timedelta(seconds=360.5)
    )
    await make_agent(sessionmaker, "admin", email="ada@example.com")
    await group_everything(sessionmaker)
    issue_id = await first_issue(sessionmaker)
    params = {
        "session_id": str(seeded.id),
        "email": quote("jane@acme.io"),
        "panel": "hubspot",
        "issue_id": str(issue_id),
    }
    for width in (601, 900, 1150):
        page = await new_page(browser, {"width": width, "height": 900}, live_server.url)
        try:
            await browser_sign_in(page, "ada@example.com", PASSWORD)
            pages = await discover_pages(page, settings, params)
            pages["search"] = "/?q=" + quote("jane@acme.io")
            for name, url in sorted(pages.items()):
                await page.goto(url)
                await settle(page)
                await assert_fits(page)
                cut = await page.evaluate(
                    """() => [...document.querySelectorAll('table')].filter(t => t.offsetParent
                         && t.scrollWidth > t.parentElement.clientWidth + 1).length"""
                )
                assert cut == 0, f"{name} at {width} px: {cut} table(s) wider than their box"
        finally:
            await page.context.close()
