"""Viewers see customers' PII masked (j***@acme.io) on the session APIs and pages; agents see it whole."""

from __future__ import annotations

import uuid
from datetime import timedelta

from supportlens.db.base import utcnow
from supportlens.sessions.models import SessionCustomerMapping, SessionEvent, UserSession

JANE = "jane.doe@acme.io"
MASKED = "j***@acme.io"


async def _seed(db) -> str:
    now = utcnow()
    s = UserSession(
        clarity_project_id="p1",
        clarity_user_id="u1",
        clarity_session_id="s1",
        customer_email=JANE,
        customer_name="Jane Doe",
        session_start=now - timedelta(minutes=3),
        session_end=now,
        entry_url="https://shop.example/",
        recording_url="https://clarity.example/r/1",
    )
    db.add(s)
    await db.flush()
    db.add(SessionEvent(id=uuid.uuid4(), session_id=s.id, event_type="click", timestamp=now))
    db.add(
        SessionCustomerMapping(
            session_id=s.id,
            customer_email=JANE,
            confidence_score=1.0,
            mapping_method="email_match",
            evidence=[{"method": "email_match", "score": 1.0, "reason": "identified"}],
        )
    )
    # A possible session of Jane: an anonymous visit scored below the threshold, above the floor.
    possible = UserSession(
        clarity_project_id="p1",
        clarity_user_id="u1",
        clarity_session_id="s2",
        session_start=now - timedelta(days=1),
        session_end=now - timedelta(days=1) + timedelta(minutes=2),
    )
    db.add(possible)
    await db.flush()
    db.add(
        SessionCustomerMapping(
            session_id=possible.id,
            customer_email=JANE,
            confidence_score=0.3,
            mapping_method="device_link",
            evidence=[{"method": "device_link", "score": 0.3, "reason": "same browser"}],
        )
    )
    await db.commit()
    return str(s.id)


async def test_viewer_sees_masked_emails(signed_in, db):
    sid = await _seed(db)
    viewer = await signed_in("viewer")
    agent = await signed_in("agent")
    checks = [
        f"/api/clarity/sessions?customer={JANE}",
        f"/api/clarity/sessions?customer={JANE}&include=possible",
        f"/api/clarity/sessions/{sid}",
        f"/api/customers/{JANE}/sessions",
        f"/partials/sessions?customer={JANE}",
        f"/sessions/{sid}",
    ]
    for path in checks:
        accept = "application/json" if path.startswith("/api/") else "text/html"
        v = await viewer.client.get(path, headers={"Accept": accept})
        a = await agent.client.get(path, headers={"Accept": accept})
        assert v.status_code == 200 and a.status_code == 200, (path, v.status_code, a.status_code)
        assert JANE not in v.text, f"{path} shows a viewer the full e-mail"
        assert MASKED in v.text, f"{path} does not show the masked e-mail to a viewer"
        assert JANE in a.text, f"{path} hides the e-mail from an agent"
    possible = (await viewer.client.get(f"/api/clarity/sessions?customer={JANE}&include=possible")).json()
    assert [i["mapping"]["customerEmail"] for i in possible["possible"]["items"]] == [MASKED]


async def test_viewer_cannot_open_recordings_or_export(signed_in, db):
    sid = await _seed(db)
    viewer = await signed_in("viewer")
    for path in (
        f"/api/clarity/sessions/{sid}/recording",
        f"/api/clarity/sessions/{sid}/export?format=json",
        f"/api/customers/{JANE}/export",
    ):
        assert (await viewer.client.get(path)).status_code == 403, path
    agent = await signed_in("agent")
    assert (await agent.client.get(f"/api/clarity/sessions/{sid}/recording")).status_code == 200
