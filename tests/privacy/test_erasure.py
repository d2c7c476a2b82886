"""Erasure: the customer's sessions, events, links, notes, history and cache go; no row keeps the e-mail."""

from __future__ import annotations

import html as html_lib
import json
import re
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

from sqlalchemy import JSON, String, Text, select
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.attention.models import AttentionCase, DwollaWebhookEvent
from supportlens.audit import service as audit
from supportlens.audit.models import AuditEntry
from supportlens.db.base import utcnow
from supportlens.mapping.models import MappingIdentity, MappingIpCustomer
from supportlens.models import Base
from supportlens.search.models import SearchHistory
from supportlens.sessions.models import SessionAnnotation, SessionCustomerMapping, SessionEvent, UserSession
from tests.support.keys import TEST_FACT_KEYS

JANE = "jane.doe@acme.io"
BOB = "bob@example.com"


def _session(email: str | None, sid: str, **kw: Any) -> UserSession:
    now = utcnow()
    return UserSession(
        clarity_project_id="proj1",
        clarity_user_id=kw.pop("user", f"u-{sid}"),
        clarity_session_id=sid,
        customer_email=email,
        customer_name="Jane Doe" if email == JANE else None,
        session_start=now - timedelta(minutes=10),
        session_end=now,
        client_ip="203.0.113.5",
        entry_url="https://shop.example/account",
        **kw,
    )


async def seed_world(db: AsyncSession, agent_id: uuid.UUID) -> dict[str, uuid.UUID]:
    """Jane identified; Jane linked by device; Jane weakly linked (stays); Bob's own session (stays)."""
    identified = _session(JANE.upper(), "s1", user="dev-jane")
    device = _session(None, "s2", user="dev-jane")
    weak = _session(None, "s3", user="dev-shared")
    bobs = _session(BOB, "s4", user="dev-bob")
    db.add_all([identified, device, weak, bobs])
    await db.flush()
    now = utcnow()
    for s in (identified, device, weak, bobs):
        db.add(
            SessionEvent(
                id=uuid.uuid4(),
                session_id=s.id,
                event_type="click",
                timestamp=now,
                page_url="https://shop.example/pay",
                event_data={"text": "Pay", "customer": JANE if s is identified else "n/a"},
            )
        )
    db.add_all(
        [
            SessionCustomerMapping(
                session_id=identified.id,
                customer_email=JANE,
                confidence_score=1.0,
                mapping_method="email_match",
                evidence=[{"method": "email_match", "score": 1.0, "reason": f"the site said {JANE}"}],
            ),
            SessionCustomerMapping(
                session_id=device.id,
                customer_email=JANE,
                confidence_score=0.8,
                mapping_method="device_link",
                evidence=[{"method": "device_link", "score": 0.8, "reason": "same device"}],
            ),
            SessionCustomerMapping(
                session_id=weak.id,
                customer_email=JANE,
                confidence_score=0.2,
                mapping_method="ip_match",
                evidence=[],
            ),
            SessionCustomerMapping(
                session_id=weak.id,
                customer_email=BOB,
                confidence_score=0.3,
                mapping_method="ip_match",
                evidence=[],
            ),
            SessionCustomerMapping(
                session_id=bobs.id,
                customer_email=BOB,
                confidence_score=1.0,
                mapping_method="email_match",
                evidence=[],
            ),
            SessionAnnotation(
                session_id=identified.id,
                agent_id=agent_id,
                timestamp=now,
                note=f"called {JANE} back",
                category="issue",
                severity="high",
            ),
            SessionAnnotation(
                session_id=bobs.id,
                agent_id=agent_id,
                timestamp=now,
                note="bob note",
                category="issue",
                severity="low",
            ),
            MappingIdentity(
                session_id=identified.id,
                customer_email=JANE,
                clarity_user_id="dev-jane",
                ip_key="k1",
                session_start=identified.session_start,
                session_end=identified.session_end,
            ),
            MappingIdentity(
                session_id=bobs.id,
                customer_email=BOB,
                clarity_user_id="dev-bob",
                ip_key="k1",
                session_start=bobs.session_start,
                session_end=bobs.session_end,
            ),
            MappingIpCustomer(ip_key="k1", customer_key=TEST_FACT_KEYS.customer(JANE)),
            MappingIpCustomer(ip_key="k1", customer_key=TEST_FACT_KEYS.customer(BOB)),
            SearchHistory(agent_id=agent_id, query=JANE.upper(), normalized_query=JANE, kind="email"),
            SearchHistory(agent_id=agent_id, query="Jane Doe", normalized_query="jane doe", kind="name"),
            SearchHistory(agent_id=agent_id, query=BOB, normalized_query=BOB, kind="email"),
        ]
    )
    await db.commit()
    return {"identified": identified.id, "device": device.id, "weak": weak.id, "bobs": bobs.id}


async def rows_mentioning(db: AsyncSession, needle: str) -> list[str]:
    """Scan EVERY table and every text or JSON column for the needle (case-insensitive)."""
    hits = []
    needle = needle.lower()
    for table in Base.metadata.sorted_tables:
        cols = [c for c in table.columns if isinstance(c.type, (String, Text, JSON)) or "JSON" in str(c.type)]
        if not cols:
            continue
        for row in (await db.execute(select(*cols))).all():
            for col, value in zip(cols, row, strict=True):
                if value is not None and needle in str(value).lower():
                    hits.append(f"{table.name}.{col.name}")
    return hits


async def test_erasure_leaves_no_row_with_the_email_in_any_table(signed_in, db, app, settings):
    admin = await signed_in("admin")
    ids = await seed_world(db, admin.agent.id)
    assert await rows_mentioning(db, JANE)  # the scan does find her before

    # a failed payment of hers on the Needs attention queue, and the Dwolla event that raised it
    db.add(
        DwollaWebhookEvent(
            event_id="ev-jane-1", topic="customer_transfer_failed", resource_id="tr-jane-1",
            customer_dwolla_id="dw-jane", created=utcnow(), received_at=utcnow(), processed_at=utcnow(),
        )
    )  # fmt: skip
    db.add(
        AttentionCase(
            event_id="ev-jane-1", topic="customer_transfer_failed", transfer_id="tr-jane-1",
            customer_dwolla_id="dw-jane", customer_email=JANE, customer_name="Jane Doe", amount="80.00",
            failure_code="R01", failed_at=utcnow(),
        )
    )  # fmt: skip
    await db.commit()

    resp = await admin.client.delete(f"/api/customers/{JANE.title()}", headers=admin.headers())
    assert resp.status_code == 200, resp.text
    receipt = resp.json()
    assert receipt["deleted"] == {
        "hubspot_note_links": 0,  # none made here: tests/crmnotes erases one
        "attention_cases": 1,
        "dwolla_webhook_events": 1,
        "sessions": 2,
        "events": 2,
        "annotations": 1,
        "mapping_links": 3,
        "search_history": 1,
        "mapping_identities": 0,  # already gone with her identified session (ON DELETE CASCADE)
        "mapping_ip_links": 1,
        "mapping_ip_devices": 0,
        "mapping_busy_browsers": 0,
        "notes_redacted": 0,
        "link_reasons_redacted": 0,
    }
    assert receipt["customerRef"] == audit.customer_ref(JANE, settings)
    clarity = next(s for s in receipt["manualSteps"] if s["system"] == "Microsoft Clarity")
    assert clarity["ids"] == ["proj1/dev-jane"]
    assert {s["system"] for s in receipt["manualSteps"]} == {"Microsoft Clarity", "HubSpot", "Dwolla"}
    assert all(s["link"].startswith("https://") for s in receipt["manualSteps"])

    db.expire_all()
    assert await rows_mentioning(db, JANE) == []
    remaining = set((await db.scalars(select(UserSession.id))).all())
    assert remaining == {ids["weak"], ids["bobs"]}  # not hers: kept
    assert len((await db.scalars(select(SessionEvent.id))).all()) == 2
    assert (await db.scalars(select(SessionCustomerMapping.customer_email))).all().count(BOB) == 2
    assert {h.query for h in (await db.scalars(select(SearchHistory))).all()} == {"Jane Doe", BOB}
    # the mapping engine's keyed facts about her are gone too; Bob's stay
    assert (await db.scalars(select(MappingIpCustomer.customer_key))).all() == [TEST_FACT_KEYS.customer(BOB)]
    assert (await db.scalars(select(MappingIdentity.customer_email))).all() == [BOB]
    entry = (await db.scalars(select(AuditEntry).where(AuditEntry.action == "customer_erased"))).one()
    assert entry.target == audit.customer_ref(JANE, settings) and "jane" not in str(entry.detail).lower()
    assert entry.actor_email == admin.agent.email


async def test_erasure_clears_the_search_cache(signed_in, settings):
    from supportlens.customers import cache

    c = cache.make_cache(settings.model_copy(update={"search_cache_seconds": 60}))
    await c.set("hubspot", JANE, {"items": [JANE]})
    assert await c.get("hubspot", JANE) is not None
    admin = await signed_in("admin")
    resp = await admin.client.delete(f"/api/customers/{JANE}", headers=admin.headers())
    assert resp.json()["cacheCleared"] is True
    assert await c.get("hubspot", JANE) is None


async def test_erasure_is_admin_only_and_validates(signed_in, db):
    agent = await signed_in("agent")
    assert (await agent.client.delete(f"/api/customers/{JANE}", headers=agent.headers())).status_code == 403
    admin = await signed_in("admin")
    bad = await admin.client.delete("/api/customers/not-an-email", headers=admin.headers())
    assert bad.status_code == 400 and bad.json()["field"] == "email"
    no_csrf = await admin.client.delete(f"/api/customers/{JANE}")
    assert no_csrf.status_code == 403


async def test_admin_confirmation_flow(signed_in, db):
    admin = await signed_in("admin")
    await seed_world(db, admin.agent.id)
    html = {"Accept": "text/html"}
    form = await admin.client.get("/admin/erasure", headers=html)
    assert form.status_code == 200 and "Customer e-mail" in form.text
    preview = await admin.client.post(
        "/admin/erasure/preview", data={"email": JANE, "csrf_token": admin.csrf}, headers=html
    )
    assert (
        preview.status_code == 200 and "2 session(s)" in preview.text and "cannot be undone" in preview.text
    )
    mismatch = await admin.client.post(
        "/admin/erasure",
        data={"email": JANE, "confirm_email": "someone@else.io", "csrf_token": admin.csrf},
        headers=html,
    )
    assert mismatch.status_code == 400 and "does not match" in mismatch.text
    assert len((await db.scalars(select(UserSession.id))).all()) == 4  # nothing deleted
    done = await admin.client.post(
        "/admin/erasure",
        data={"email": JANE, "confirm_email": JANE.upper(), "csrf_token": admin.csrf},
        headers=html,
    )
    assert done.status_code == 200 and "The customer was erased" in done.text
    assert 'data-count="sessions">2<' in done.text and "proj1/dev-jane" in done.text
    # shown and downloadable once: a data: link in the page, not cached, not stored
    assert done.headers["cache-control"] == "no-store"
    link = re.search(
        r'id="receipt-download"[^>]*href="data:application/json;charset=utf-8,([^"]+)"', done.text
    )
    assert link is not None
    downloaded = json.loads(unquote(html_lib.unescape(link.group(1))))
    assert downloaded["manualSteps"][0]["ids"] == ["proj1/dev-jane"]
    db.expire_all()
    assert await rows_mentioning(db, JANE) == []
    assert await rows_mentioning(db, "dev-jane") == []  # her browser: in the receipt, nowhere else
