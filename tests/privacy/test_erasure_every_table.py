"""Issue #24, findings 3 and 4: after erasure, no text or JSON column of any table names the customer.

The customer is identified in every way the product knows, through the real routes: signed in on a
site, the same browser later (device link), another browser on the same network minutes apart
(network link), a session an agent links by hand and one an agent unlinks (both with a typed reason
naming the customer), a note, a search, and the customer pages. The scan reads the catalogue at run
time, so a table or column added later is covered without changing this test.
"""

from __future__ import annotations

import unicodedata
import uuid
from typing import Any

import httpx2
import pytest
from sqlalchemy import select, text

from supportlens.audit.models import AuditEntry
from supportlens.capture import sites
from supportlens.mapping.models import MappingIpDevice
from supportlens.sessions.models import SessionAnnotation, UserSession
from supportlens.tasks.status import wait_until_drained
from tests.support.browsers import BROWSER
from tests.support.ingest import ORIGIN, PROJECT, ago, batch, event, headers

INGEST = "/api/ingest/v1/events"
EMAIL = "erase.me@example.com"
PHONE = "+1 415 555 0132"
CARD = "4111 1111 1111 1111"
DWOLLA_ID = "9f3b6c1e-5d0a-4c4e-9a51-2f7e0c1d8b77"  # the id the site passes to SupportLens.identify
HOME_IP, CAFE_IP, OFFICE_IP = "198.51.100.10", "203.0.113.44", "192.0.2.77"
SIGNED_IN_BROWSER, MANUAL_BROWSER, OTHER_BROWSER = "erase-b1", "erase-b3", "bob-b1"

TEXT_TYPES = ("text", "character varying", "character", "json", "jsonb", "ARRAY", "USER-DEFINED")


async def text_columns(db: Any) -> list[tuple[str, str, str]]:
    """Every text-like column of every base table in every user schema, read from the catalogue."""
    rows = await db.execute(
        text(
            "SELECT c.table_schema, c.table_name, c.column_name FROM information_schema.columns c "
            "JOIN information_schema.tables t USING (table_schema, table_name) "
            "WHERE t.table_type = 'BASE TABLE' "
            "AND c.table_schema NOT IN ('pg_catalog', 'information_schema') "
            "AND c.data_type = ANY(:types) ORDER BY 1, 2, 3"
        ),
        {"types": list(TEXT_TYPES)},
    )
    return [(r[0], r[1], r[2]) for r in rows]


async def columns_holding(db: Any, needle: str) -> list[str]:
    """`schema.table.column` of every column with a value containing the needle, in any case and in any
    Unicode normal form."""
    hits = []
    needle = unicodedata.normalize("NFKC", needle).lower()
    for schema, table, column in await text_columns(db):
        found = await db.scalar(
            text(
                f'SELECT EXISTS (SELECT 1 FROM "{schema}"."{table}" '
                f'WHERE strpos(lower(normalize("{column}"::text, NFKC)), :needle) > 0)'
            ),
            {"needle": needle},
        )
        if found:
            hits.append(f"{schema}.{table}.{column}")
    return hits


def _client_from(app: Any, ip: str) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        headers=BROWSER,
        transport=httpx2.ASGITransport(app=app, client=(ip, 40000)),
        base_url="http://testserver",
    )


async def _ingest(app: Any, key: str, ip: str, browser: str, sid: str, minutes_ago: float, **kw: Any) -> None:
    body = batch(key, [event("click", at=ago(minutes=minutes_ago))], session_id=sid, user_id=browser, **kw)
    async with _client_from(app, ip) as c:
        r = await c.post(INGEST, json=body, headers=headers())
    assert r.status_code == 202, r.text


async def _session_id(db: Any, clarity_session_id: str) -> uuid.UUID:
    db.expire_all()
    return (
        await db.scalars(select(UserSession.id).where(UserSession.clarity_session_id == clarity_session_id))
    ).one()


@pytest.fixture(autouse=True)
def _mapping_worker(worker: Any) -> Any:
    """The task-queue worker maps what these tests ingest, as `supportlens serve`'s does."""
    return worker


async def identify_in_every_way(app: Any, db: Any, agent: Any, email: str = EMAIL) -> dict[str, uuid.UUID]:
    _, key = await sites.create_site(db, name="Shop", origins=[ORIGIN], clarity_project_id=PROJECT)
    her = {"email": email.title(), "id": DWOLLA_ID, "name": "Erase Me"}
    await _ingest(app, key, HOME_IP, SIGNED_IN_BROWSER, "s-signed-in", 40, customer=her)
    await _ingest(app, key, CAFE_IP, SIGNED_IN_BROWSER, "s-device", 20)  # device link
    await _ingest(app, key, HOME_IP, "erase-b2", "s-network", 39)  # network link, minutes apart
    await _ingest(app, key, OFFICE_IP, MANUAL_BROWSER, "s-manual", 10)  # linked by hand below
    await _ingest(app, key, OFFICE_IP, OTHER_BROWSER, "s-bob", 5, customer={"email": "bob@example.com"})
    await wait_until_drained(app.state.sessionmaker)  # the mapping worker linked them
    ids = {
        name: await _session_id(db, f"s-{name}")
        for name in ("signed-in", "device", "network", "manual", "bob")
    }

    h = agent.headers()
    reason = f"{email} told us on the phone ({PHONE}); paid with {CARD}"
    link = {"sessionId": str(ids["manual"]), "customerEmail": email, "reason": reason}
    assert (await agent.client.post("/api/clarity/sessions/map", json=link, headers=h)).status_code == 200
    unlink = {"sessionId": str(ids["bob"]), "customerEmail": email, "reason": f"Bob's, not {email.upper()}'s"}
    r = await agent.client.request("DELETE", "/api/clarity/sessions/map", json=unlink, headers=h)
    assert r.status_code == 200, r.text
    # Free text about her on what stays: Bob's link and a note on Bob's session.
    to_bob = {
        "sessionId": str(ids["bob"]),
        "customerEmail": "bob@example.com",
        "reason": f"{email}'s husband",
    }
    assert (await agent.client.post("/api/clarity/sessions/map", json=to_bob, headers=h)).status_code == 200
    note = {
        "offsetMs": 0,
        "note": f"Bob pays for {email.title()}",
        "category": "observation",
        "severity": "low",
    }
    r = await agent.client.post(f"/api/clarity/sessions/{ids['bob']}/annotate", json=note, headers=h)
    assert r.status_code in (200, 201), r.text
    note = {"offsetMs": 0, "note": f"{email} asked for a refund", "category": "issue", "severity": "high"}
    r = await agent.client.post(f"/api/clarity/sessions/{ids['signed-in']}/annotate", json=note, headers=h)
    assert r.status_code in (200, 201), r.text
    assert (await agent.client.get("/api/search", params={"q": email.upper()}, headers=h)).status_code == 200
    for page in ("sessions", "journey"):
        r = await agent.client.get(f"/api/customers/{email}/{page}", headers=h)
        assert r.status_code == 200, r.text
    return ids


# An ASCII address, and an internationalised one that agents and the site send decomposed (NFD).
@pytest.mark.parametrize(
    ("typed", "canonical"),
    [(EMAIL, EMAIL), ("jo\u0308rg.mu\u0308ller@example.de", "j\u00f6rg.m\u00fcller@example.de")],
)
async def test_erasure_leaves_the_customer_in_no_column_of_any_table(app, db, signed_in, typed, canonical):
    agent = await signed_in("agent")
    ids = await identify_in_every_way(app, db, agent, typed)
    db.expire_all()
    assert await columns_holding(db, canonical)  # the scan sees her before erasure
    assert await columns_holding(db, MANUAL_BROWSER)

    admin = await signed_in("admin")
    r = await admin.client.delete(f"/api/customers/{canonical.upper()}", headers=admin.headers())
    assert r.status_code == 200, r.text
    clarity = next(s for s in r.json()["manualSteps"] if s["system"] == "Microsoft Clarity")
    browsers = {i.split("/")[-1] for i in clarity["ids"]}
    assert {SIGNED_IN_BROWSER, MANUAL_BROWSER} <= browsers

    db.expire_all()
    for needle in [canonical, DWOLLA_ID, *sorted(browsers)]:
        assert await columns_holding(db, needle) == [], needle
    # Bob's own session and browser stay; only the link an agent refused to her went.
    assert (await db.scalars(select(UserSession.id).where(UserSession.id == ids["bob"]))).all()
    assert await columns_holding(db, OTHER_BROWSER)
    notes = (await db.scalars(select(SessionAnnotation.note))).all()
    assert notes == ["Bob pays for [erased]"]  # the rest of an agent's note on what stays is kept


async def test_an_agents_reason_reaches_the_audit_log_masked(app, db, signed_in):
    agent = await signed_in("agent")
    await identify_in_every_way(app, db, agent)
    db.expire_all()
    entries = (await db.scalars(select(AuditEntry).where(AuditEntry.action.like("mapping.%")))).all()
    assert {e.action for e in entries} == {"mapping.link", "mapping.unlink"}
    for entry in entries:
        reason = entry.detail["reason"]
        assert "[email]" in reason and "@" not in reason
    linked = next(e for e in entries if e.action == "mapping.link").detail["reason"]
    assert "[phone]" in linked and "[card]" in linked and "told us on the phone" in linked
    assert "555" not in linked and "4111" not in linked


async def test_erasure_removes_her_browsers_from_the_address_counts(app, db, signed_in):
    agent = await signed_in("agent")
    await identify_in_every_way(app, db, agent)
    db.expire_all()
    before = set((await db.scalars(select(MappingIpDevice.clarity_user_id))).all())
    assert {SIGNED_IN_BROWSER, MANUAL_BROWSER} <= before
    admin = await signed_in("admin")
    r = await admin.client.delete(f"/api/customers/{EMAIL}", headers=admin.headers())
    assert r.status_code == 200, r.text
    db.expire_all()
    after = set((await db.scalars(select(MappingIpDevice.clarity_user_id))).all())
    assert after.isdisjoint({SIGNED_IN_BROWSER, MANUAL_BROWSER}) and OTHER_BROWSER in after
    assert r.json()["deleted"]["mapping_ip_devices"] >= 2
