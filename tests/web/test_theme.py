"""The agent's colour scheme: saved on the agent, rendered into <html data-theme> before first paint."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from supportlens.auth.models import Agent

HTML = {"Accept": "text/html"}


def html_theme(page: str) -> str:
    m = re.search(r'<html lang="en" data-theme="([a-z]+)"', page)
    assert m, "no data-theme on <html>"
    return m.group(1)


async def stored_theme(sessionmaker, email: str) -> str:
    async with sessionmaker() as db:
        return (await db.execute(select(Agent.theme).where(Agent.email == email))).scalar_one()


async def test_a_new_agent_follows_the_browser(signed_in):
    s = await signed_in("viewer")
    page = await s.client.get("/", headers=HTML)
    assert html_theme(page.text) == "system"
    assert 'aria-pressed="true">System</button>' in page.text


@pytest.mark.parametrize("theme", ["dark", "light", "system"])
async def test_the_choice_is_kept_on_the_agent_and_rendered_first(signed_in, sessionmaker, theme):
    s = await signed_in("viewer")
    resp = await s.client.post(
        "/account/theme", data={"csrf_token": s.csrf, "theme": theme, "next": "/admin/goals?x=1"}
    )
    assert resp.status_code == 303 and resp.headers["location"] == "/admin/goals?x=1"
    assert await stored_theme(sessionmaker, s.agent.email) == theme
    page = await s.client.get("/account/security", headers=HTML)
    assert html_theme(page.text) == theme
    assert f'value="{theme}" class="btn btn-small"\n                      aria-pressed="true"' in page.text


async def test_the_toggle_fetch_gets_no_content(signed_in, sessionmaker):
    s = await signed_in("agent")
    resp = await s.client.post("/account/theme", data={"theme": "dark"}, headers=s.headers())
    assert resp.status_code == 204
    assert await stored_theme(sessionmaker, s.agent.email) == "dark"


async def test_an_unknown_theme_is_a_400_naming_the_field(signed_in, sessionmaker):
    s = await signed_in("agent")
    resp = await s.client.post("/account/theme", data={"theme": "<script>", "csrf_token": s.csrf})
    assert resp.status_code == 400
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.json()["field"] == "theme"
    assert await stored_theme(sessionmaker, s.agent.email) == "system"


@pytest.mark.parametrize(
    "target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:x"]
)
async def test_next_never_leaves_the_site(signed_in, target):
    s = await signed_in("agent")
    resp = await s.client.post("/account/theme", data={"theme": "dark", "next": target, "csrf_token": s.csrf})
    assert resp.status_code == 303 and resp.headers["location"] == "/"


async def test_without_csrf_nothing_changes(signed_in, sessionmaker):
    s = await signed_in("agent")
    resp = await s.client.post("/account/theme", data={"theme": "dark"})
    assert resp.status_code == 403
    assert await stored_theme(sessionmaker, s.agent.email) == "system"


async def test_signed_out_pages_follow_the_browser(client):
    page = await client.get("/login", headers=HTML)
    assert html_theme(page.text) == "system"


async def test_without_next_the_form_returns_to_the_referring_page_of_this_site(signed_in):
    s = await signed_in("agent")
    back = "/customers/jane@acme.io/analytics?days=7"
    resp = await s.client.post(
        "/account/theme",
        data={"theme": "dark", "csrf_token": s.csrf},
        headers={"Referer": f"http://testserver{back}"},
    )
    assert resp.status_code == 303 and resp.headers["location"] == back
    elsewhere = await s.client.post(
        "/account/theme",
        data={"theme": "light", "csrf_token": s.csrf},
        headers={"Referer": "https://evil.example/customers"},
    )
    assert elsewhere.headers["location"] == "/"


async def test_the_page_does_not_write_its_own_address_into_the_theme_form(signed_in):
    # A page's address can name a customer; viewers must see customers masked.
    viewer = await signed_in("viewer")
    html = (await viewer.client.get("/customers/jane@acme.io/analytics", headers=HTML)).text
    assert "jane@acme.io" not in html
