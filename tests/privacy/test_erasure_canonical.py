"""Issue #24, finding 2: every customer ingest accepts can be erased, in whatever form the admin types."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from supportlens.audit.models import AuditEntry
from supportlens.capture import sites
from supportlens.sessions.models import UserSession
from tests.support.ingest import ORIGIN, PROJECT, ago, batch, event, headers

URL = "/api/ingest/v1/events"


@pytest.fixture
async def site_key(db) -> str:
    _, key = await sites.create_site(db, name="Shop", origins=[ORIGIN], clarity_project_id=PROJECT)
    return key


async def _ingest(client, site_key: str, email: str, sid: str) -> None:
    body = batch(
        site_key,
        [event("click", at=ago(seconds=5))],
        session_id=sid,
        user_id=f"u{sid}",
        customer={"email": email},
    )
    r = await client.post(URL, json=body, headers=headers())
    assert r.status_code == 202, r.text


async def _sessions(db) -> int:
    db.expire_all()
    return int(await db.scalar(select(func.count()).select_from(UserSession)))


async def _erase(admin, email: str) -> dict:
    r = await admin.client.delete(f"/api/customers/{quote(email, safe='@')}", headers=admin.headers())
    assert r.status_code == 200, r.text
    return r.json()


async def test_an_email_a_strict_validator_rejects_is_erasable(client, db, site_key, signed_in):
    await _ingest(client, site_key, "Taro..Yamada@docomo.ne.jp", "s1")
    admin = await signed_in("admin")
    receipt = await _erase(admin, "taro..yamada@docomo.ne.jp")
    assert receipt["deleted"]["sessions"] == 1
    assert await _sessions(db) == 0


async def test_a_decomposed_email_is_stored_composed_and_erased_in_either_form(
    client, db, site_key, signed_in
):
    await _ingest(client, site_key, "jo\u0308rg@mu\u0308ller.de", "s1")
    await _ingest(client, site_key, "J\u00d6RG@M\u00dcLLER.DE", "s2")
    db.expire_all()
    stored = set((await db.scalars(select(UserSession.customer_email))).all())
    assert stored == {"j\u00f6rg@m\u00fcller.de"}
    admin = await signed_in("admin")
    listed = await admin.client.get(
        "/api/clarity/sessions", params={"customer": "jo\u0308rg@mu\u0308ller.de"}, headers=admin.headers()
    )
    assert listed.status_code == 200 and len(listed.json()["items"]) == 2, listed.text
    receipt = await _erase(admin, "JO\u0308RG@mu\u0308ller.de")
    assert receipt["deleted"]["sessions"] == 2
    assert await _sessions(db) == 0


async def test_the_admin_flow_erases_a_validator_rejected_email(client, db, site_key, signed_in):
    await _ingest(client, site_key, "taro..yamada@docomo.ne.jp", "s1")
    admin = await signed_in("admin")
    html = {"Accept": "text/html"}
    preview = await admin.client.post(
        "/admin/erasure/preview",
        data={"email": "taro..yamada@docomo.ne.jp", "csrf_token": admin.csrf},
        headers=html,
    )
    assert preview.status_code == 200 and "1 session(s)" in preview.text, preview.text
    done = await admin.client.post(
        "/admin/erasure",
        data={
            "email": "taro..yamada@docomo.ne.jp",
            "confirm_email": " TARO..YAMADA@docomo.ne.jp",
            "csrf_token": admin.csrf,
        },
        headers=html,
    )
    assert done.status_code == 200 and "The customer was erased" in done.text
    assert await _sessions(db) == 0


async def test_a_search_typed_decomposed_is_erased_with_the_composed_form(db, signed_in):
    agent = await signed_in("agent")
    r = await agent.client.get(
        "/api/search", params={"q": "JO\u0308RG@mu\u0308ller.de"}, headers=agent.headers()
    )
    assert r.status_code == 200 and r.json()["query"]["email"] == "j\u00f6rg@m\u00fcller.de"
    admin = await signed_in("admin")
    assert (await _erase(admin, "j\u00f6rg@m\u00fcller.de"))["deleted"]["search_history"] == 1


async def test_an_internationalised_email_in_a_reason_reaches_the_audit_log_masked(
    client, db, site_key, signed_in
):
    await _ingest(client, site_key, "bob@example.com", "s1")
    db.expire_all()
    sid = (await db.scalars(select(UserSession.id))).one()
    agent = await signed_in("agent")
    link = {
        "sessionId": str(sid),
        "customerEmail": "bob@example.com",
        "reason": "jo\u0308rg@mu\u0308ller.de's husband",
    }
    assert (
        await agent.client.post("/api/clarity/sessions/map", json=link, headers=agent.headers())
    ).status_code == 200
    db.expire_all()
    entry = (await db.scalars(select(AuditEntry).where(AuditEntry.action == "mapping.link"))).one()
    assert entry.detail["reason"] == "[email]'s husband"
