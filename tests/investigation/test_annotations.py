"""Notes at a moment of a session: add, edit, soft delete, validation, the has-notes filter."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from supportlens.audit.models import AuditEntry
from supportlens.sessions.models import SessionAnnotation
from tests.investigation.seed import seed_checkout_session
from tests.investigation.test_session_api import player_data


async def actions(db) -> list[str]:
    return [a.action for a in (await db.scalars(select(AuditEntry).order_by(AuditEntry.occurred_at))).all()]


async def test_annotations_add_edit_delete_and_audit(signed_in, sessionmaker, db):
    seeded = await seed_checkout_session(sessionmaker)
    agent = await signed_in("agent")
    url = f"/api/clarity/sessions/{seeded.id}/annotate"
    body = {
        "offsetMs": 300500,
        "note": "<script>alert(1)</script> pay failed",
        "category": "issue",
        "severity": "high",
    }
    r = await agent.client.post(url, json=body, headers=agent.headers())
    assert r.status_code == 201, r.text
    note = r.json()
    assert note["offsetMs"] == 300500 and note["category"] == "issue"
    # by ISO timestamp too
    ts = (seeded.session.session_start + timedelta(seconds=10)).isoformat()
    r = await agent.client.post(
        url,
        json={"timestamp": ts, "note": "browsing", "category": "observation", "severity": "low"},
        headers=agent.headers(),
    )
    assert r.status_code == 201 and r.json()["offsetMs"] == 10000
    # shown on the page (escaped inside the JSON block, so no script element is injected)
    html = (await agent.client.get(f"/sessions/{seeded.id}")).text
    assert "<script>alert(1)" not in html
    assert [a["note"] for a in player_data(html)["annotations"]] == ["browsing", body["note"]]
    # someone else may not change it; the author may
    other = await signed_in("agent", email="other@example.com")
    aid = note["id"]
    r = await other.client.patch(
        f"/api/clarity/sessions/{seeded.id}/annotations/{aid}",
        json={"note": "mine now"},
        headers=other.headers(),
    )
    assert r.status_code == 403
    r = await agent.client.patch(
        f"/api/clarity/sessions/{seeded.id}/annotations/{aid}",
        json={"note": "pay button threw", "severity": "medium"},
        headers=agent.headers(),
    )
    assert (
        r.status_code == 200 and r.json()["note"] == "pay button threw" and r.json()["severity"] == "medium"
    )
    r = await agent.client.delete(
        f"/api/clarity/sessions/{seeded.id}/annotations/{aid}", headers=agent.headers()
    )
    assert r.status_code == 204
    items = (await agent.client.get(f"/api/clarity/sessions/{seeded.id}/annotations")).json()["items"]
    assert [i["note"] for i in items] == ["browsing"]
    row = await db.get(SessionAnnotation, uuid.UUID(aid))
    assert row is not None and row.deleted_at is not None  # soft delete
    r = await agent.client.delete(
        f"/api/clarity/sessions/{seeded.id}/annotations/{aid}", headers=agent.headers()
    )
    assert r.status_code == 404
    done = await actions(db)
    for action in ("annotation_created", "annotation_updated", "annotation_deleted"):
        assert action in done
    # CSRF is required for cookie sessions
    r = await agent.client.post(url, json=body)
    assert r.status_code == 403


async def test_annotation_validation_names_the_field(signed_in, sessionmaker):
    seeded = await seed_checkout_session(sessionmaker)
    agent = await signed_in("agent")
    url = f"/api/clarity/sessions/{seeded.id}/annotate"
    good = {"offsetMs": 1000, "note": "ok", "category": "issue", "severity": "low"}
    cases = [
        ({**good, "note": "x" * 2001}, "note"),
        ({**good, "note": "   "}, "note"),
        ({**good, "category": "bug"}, "category"),
        ({**good, "severity": "critical"}, "severity"),
        ({**good, "offsetMs": 10_000_000}, "offsetMs"),
        ({**good, "offsetMs": -5}, "offsetMs"),
        ({k: v for k, v in good.items() if k != "offsetMs"}, "body"),
        ({**good, "extra": 1}, "extra"),
        (
            {"note": "x", "category": "issue", "severity": "low", "timestamp": "2001-01-01T00:00:00Z"},
            "timestamp",
        ),
    ]
    for body, field in cases:
        r = await agent.client.post(url, json=body, headers=agent.headers())
        assert r.status_code == 400, (body, r.text)
        assert r.json()["field"] == field, (body, r.json())
    r = await agent.client.post(url, json={**good, "note": "x" * 2000}, headers=agent.headers())
    assert r.status_code == 201


async def test_sessions_with_notes_filter(signed_in, sessionmaker):
    a = await seed_checkout_session(sessionmaker)
    b = await seed_checkout_session(
        sessionmaker, clarity_session_id="s2", start=a.session.session_start - timedelta(days=1)
    )
    agent = await signed_in("agent")
    await agent.client.post(
        f"/api/clarity/sessions/{b.id}/annotate",
        json={"offsetMs": 5000, "note": "look", "category": "observation", "severity": "low"},
        headers=agent.headers(),
    )
    allr = (await agent.client.get("/api/customers/jane@acme.io/sessions")).json()["items"]
    assert [i["id"] for i in allr] == [str(a.id), str(b.id)]
    noted = (await agent.client.get("/api/customers/jane@acme.io/sessions", params={"has_notes": 1})).json()[
        "items"
    ]
    assert [(i["id"], i["notes"]) for i in noted] == [(str(b.id), 1)]
    html = (await agent.client.get("/customers/jane@acme.io/analytics?has_notes=1")).text
    assert f'data-session-row="{b.id}"' in html and f'data-session-row="{a.id}"' not in html
