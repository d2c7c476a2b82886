"""Agents and signed-in HTTP clients for tests."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx2

from supportlens.auth import service
from supportlens.auth.models import Agent

PASSWORD = "correct horse battery staple"


@dataclass
class SignedIn:
    client: httpx2.AsyncClient
    agent: Agent
    csrf: str

    def headers(self) -> dict[str, str]:
        return {"X-CSRF-Token": self.csrf}


async def make_agent(
    sessionmaker, role: str = "agent", email: str | None = None, password: str = PASSWORD
) -> Agent:
    async with sessionmaker() as db:
        return await service.create_agent(
            db, email=email or f"{role}@example.com", role=role, name=role.title(), password=password
        )


def csrf_from(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html) or re.search(
        r'<meta name="csrf-token" content="([^"]*)"', html
    )
    assert m, "no CSRF token on the page"
    return m.group(1)


async def sign_in(client: httpx2.AsyncClient, email: str, password: str = PASSWORD) -> str:
    """Sign in through the real login form; returns the page's CSRF token for later writes."""
    page = await client.get("/login")
    token = csrf_from(page.text)
    resp = await client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    assert resp.status_code == 303, resp.text
    home = await client.get("/", headers={"Accept": "text/html"})
    m = re.search(r'<meta name="csrf-token" content="([^"]+)"', home.text)
    assert m, "signed-in page has no CSRF token"
    return m.group(1)
