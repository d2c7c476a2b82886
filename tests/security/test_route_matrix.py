"""Every route of the app x {anonymous, viewer, agent, admin} against the table in route_rules.py.

A route without a row fails the build; so does a row naming a route that no longer exists.
Expectations, for a route needing role R:
  anonymous       -> 401 (API) or a 303 to /login (page)      [unless R is PUBLIC]
  role below R    -> 403
  role R or above -> anything but 401/403, and never 5xx
  PUBLIC          -> never a sign-in demand and never 5xx, for everyone
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx2

from supportlens.app import create_app, routers
from supportlens.db.base import utcnow
from supportlens.sessions.models import SessionAnnotation, SessionEvent, UserSession
from tests.security.route_rules import ADMIN, AGENT, PUBLIC, RULES, SAMPLE_PARAMS, VENDOR_502, VIEWER
from tests.support.agents import make_agent, sign_in

RANK = {VIEWER: 0, AGENT: 1, ADMIN: 2}
ROLES = ("anonymous", "viewer", "agent", "admin")


def walk(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path template) of every route, through included routers (FastAPI keeps them nested)."""
    for r in routes:
        if hasattr(r, "original_router"):
            yield from walk(r.original_router.routes, prefix + (r.include_context.prefix or ""))
        elif getattr(r, "methods", None):
            for m in sorted(set(r.methods) - {"HEAD"}):
                yield m, prefix + r.path
        else:  # Mount (static files)
            yield "MOUNT", prefix + r.path


def app_routes(settings: Any) -> list[tuple[str, str]]:
    return sorted(set(walk(create_app(settings).routes)))


def test_every_route_has_a_rule(settings):
    found = app_routes(settings)
    missing = [f"{m} {p}" for m, p in found if (m, p) not in RULES]
    assert not missing, (
        "routes without a rule in tests/security/route_rules.py "
        "(add a row: PUBLIC, VIEWER, AGENT or ADMIN):\n  " + "\n  ".join(missing)
    )
    # every router listed by routers() is part of the walk
    for router in routers():
        for m, p in walk(router.routes):
            assert (m, p) in found


def test_no_rule_for_a_route_that_does_not_exist(settings):
    found = set(app_routes(settings))
    stale = [f"{m} {p}" for (m, p) in RULES if (m, p) not in found]
    assert not stale, "rows in route_rules.py for routes that no longer exist:\n  " + "\n  ".join(stale)


async def _seed(sessionmaker: Any, author_id: uuid.UUID) -> dict[str, str]:
    target = await make_agent(sessionmaker, role="viewer", email="matrix-target@example.com")
    now = utcnow()
    async with sessionmaker() as db:
        s = UserSession(
            clarity_project_id="p1",
            clarity_user_id="u-matrix",
            clarity_session_id="s-matrix",
            customer_email="matrix.customer@example.com",
            session_start=now - timedelta(minutes=5),
            session_end=now,
            entry_url="https://shop.example/",
            recording_url="https://clarity.example/rec/1",
        )
        db.add(s)
        await db.flush()
        db.add(
            SessionEvent(
                id=uuid.uuid4(),
                session_id=s.id,
                event_type="click",
                timestamp=now,
                page_url="https://shop.example/",
            )
        )
        note = SessionAnnotation(
            session_id=s.id,
            agent_id=author_id,
            timestamp=now,
            note="matrix note",
            category="issue",
            severity="low",
        )
        db.add(note)
        await db.commit()
        return {
            "session_id": str(s.id),
            "annotation_id": str(note.id),
            "email": "matrix.customer@example.com",
            "agent_id": str(target.id),
        }


async def service_agent(sessionmaker: Any, email: str) -> uuid.UUID:
    from supportlens.auth import service

    async with sessionmaker() as db:
        agent = await service.get_agent_by_email(db, email)
        assert agent is not None
        return agent.id


def concrete(path: str, seeded: dict[str, str]) -> str:
    def fill(m: re.Match[str]) -> str:
        sample = SAMPLE_PARAMS.get(m.group(1), str(uuid.uuid4()))
        if sample.startswith("{seeded:"):
            sample = seeded[sample[len("{seeded:") : -1]]
        return sample

    return re.sub(r"\{(\w+)(?::\w+)?\}", fill, path)


def _asks_for_sign_in(resp: httpx2.Response) -> bool:
    # The sign-in demand is a redirect carrying ?next= (a plain /login redirect ends a login step).
    if resp.status_code == 303 and resp.headers.get("location", "").startswith("/login?next="):
        return True
    if resp.status_code == 401:
        try:
            return resp.json().get("title") in ("Sign-in required", "Invalid API token")
        except ValueError:
            return False
    return False


def _order(route: tuple[str, str]) -> tuple[int, str, str]:
    # Destructive calls last so they cannot remove what other routes are probed with.
    m, p = route
    last = m == "DELETE" or p in ("/logout", "/admin/erasure")
    return (1 if last else 0, p, m)


async def test_route_role_matrix(app, settings, sessionmaker):
    clients: dict[str, httpx2.AsyncClient] = {}
    csrf: dict[str, str] = {}
    emails: dict[str, str] = {}

    def new_client() -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=app, client=("127.0.0.1", 50010), raise_app_exceptions=False),
            base_url="http://testserver",
        )

    for role in ROLES:
        clients[role] = new_client()
        if role != "anonymous":
            agent = await make_agent(sessionmaker, role=role, email=f"matrix-{role}@example.com")
            emails[role] = agent.email
            csrf[role] = await sign_in(clients[role], agent.email)

    # The annotation belongs to the agent (authors edit their own notes; admins any).
    author = await service_agent(sessionmaker, emails["agent"])
    seeded = await _seed(sessionmaker, author)
    failures: list[str] = []
    checked = 0
    for method, template in sorted(app_routes(settings), key=_order):
        level = RULES.get((method, template))
        assert level is not None, f"no rule for {method} {template}"
        if method == "MOUNT":
            method, template = "GET", template + "/css/app.css"
        path = concrete(template, seeded)
        is_api = path.startswith("/api/")
        for role in ROLES:
            c = clients[role]
            headers = {"Accept": "application/json" if is_api else "text/html"}
            if role in csrf:
                headers["X-CSRF-Token"] = csrf[role]
            kwargs: dict[str, Any] = {"headers": headers}
            if method in ("POST", "PUT", "PATCH", "DELETE"):
                kwargs["json"] = {}
            resp = await c.request(method, path, **kwargs)
            checked += 1
            got = resp.status_code
            where = f"{method} {template} as {role}: got {got}"
            if got >= 500 and not (got == 502 and (method, template) in VENDOR_502):
                failures.append(f"{where} (server error)")
            elif level == PUBLIC:
                if _asks_for_sign_in(resp):
                    failures.append(f"{where} (public route asks for sign-in)")
            elif role == "anonymous":
                if not _asks_for_sign_in(resp):
                    failures.append(f"{where} (expected 401 or redirect to /login)")
            elif RANK[role] < RANK[level]:
                if got != 403:
                    failures.append(f"{where} (expected 403: needs {level})")
            elif got in (401, 403) or _asks_for_sign_in(resp):
                failures.append(f"{where} (expected access: {role} >= {level})")
            # Re-sign-in if the call ended the session (logout).
            if role in csrf and method != "GET" and (await c.get("/api/me")).status_code == 401:
                csrf[role] = await sign_in(c, emails[role])
    for c in clients.values():
        await c.aclose()
    assert checked >= 4 * len(RULES) - 4
    assert not failures, f"{len(failures)} route/role answers differ from route_rules.py:\n  " + "\n  ".join(
        failures
    )
