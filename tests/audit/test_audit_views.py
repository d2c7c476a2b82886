"""/admin/audit: filter by action, actor, target and dates; CSV/JSON export streamed and audited."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from sqlalchemy import select, text

from supportlens.audit import service as audit
from supportlens.audit.models import AuditEntry
from supportlens.db.base import utcnow

HTML = {"Accept": "text/html"}


async def _seed(db, settings):
    old = utcnow() - timedelta(days=10)
    db.add_all(
        [
            AuditEntry(
                action="search",
                actor_email="ann@example.com",
                target_type="customer",
                target=audit.customer_ref("jane@acme.io", settings),
                occurred_at=old,
                detail={},
            ),
            AuditEntry(
                action="session_view",
                actor_email="bob@example.com",
                target_type="session",
                target="abc",
                detail={"n": 1},
            ),
            AuditEntry(
                action="export",
                actor_email="ann@example.com",
                target_type="session",
                target="=HYPERLINK()",
                detail={},
            ),
        ]
    )
    await db.commit()


async def test_filters(signed_in, db, settings):
    admin = await signed_in("admin")
    await _seed(db, settings)
    page = await admin.client.get("/admin/audit", headers=HTML)
    assert page.status_code == 200 and "session_view" in page.text and "login" in page.text
    by_action = await admin.client.get("/admin/audit?action=session_view", headers=HTML)
    assert "bob@example.com" in by_action.text and "ann@example.com" not in by_action.text
    by_actor = await admin.client.get("/admin/audit?actor=ANN@", headers=HTML)
    assert "bob@example.com" not in by_actor.text.split("<tbody>")[1]
    # A customer's e-mail finds the pseudonymised entries
    by_customer = await admin.client.get("/admin/audit?target=Jane@Acme.io", headers=HTML)
    body = by_customer.text.split("<tbody>")[1]
    assert audit.customer_ref("jane@acme.io", settings) in body and "session_view" not in body
    today = utcnow().date().isoformat()
    recent = await admin.client.get(f"/admin/audit?from={today}&to={today}&actor=ann", headers=HTML)
    body = recent.text.split("<tbody>")[1]
    assert "export" in body and "search" not in body
    bad = await admin.client.get("/admin/audit?from=yesterday", headers=HTML)
    assert bad.status_code == 400


async def test_a_blank_date_is_no_filter_and_the_page_links_keep_the_dates(signed_in, db, settings):
    admin = await signed_in("admin")
    await _seed(db, settings)
    # The filter form sends its blank date inputs as `from=&to=`.
    blank = await admin.client.get("/admin/audit?action=&actor=&target=&from=&to=", headers=HTML)
    assert blank.status_code == 200 and "session_view" in blank.text
    today = utcnow().date().isoformat()
    page = await admin.client.get(f"/admin/audit?from={today}&to={today}", headers=HTML)
    # The export links (and "Older entries") carry the same date filter as the page.
    assert f"/admin/audit/export?format=csv&amp;from={today}&amp;to={today}" in page.text
    export = await admin.client.get(f"/admin/audit/export?format=json&from={today}&to={today}")
    assert "search" not in {r["action"] for r in export.json()}


async def test_csv_and_json_export(signed_in, db, settings):
    admin = await signed_in("admin")
    await _seed(db, settings)
    resp = await admin.client.get("/admin/audit/export?format=csv&actor=ann")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
    assert "attachment" in resp.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(resp.text)))
    assert {r["action"] for r in rows} == {"search", "export"}
    # Formula injection defused for spreadsheets
    assert next(r for r in rows if r["action"] == "export")["target"] == "'=HYPERLINK()"
    js = await admin.client.get("/admin/audit/export?format=json")
    data = js.json()
    assert {"search", "session_view", "export", "login"} <= {r["action"] for r in data}
    assert all(isinstance(r["detail"], dict) for r in data)
    exports = (await db.scalars(select(AuditEntry).where(AuditEntry.action == "audit_export"))).all()
    assert len(exports) == 2 and exports[0].actor_email == admin.agent.email


async def test_export_streams_large_logs_in_pages(signed_in, db):
    admin = await signed_in("admin")
    db.add_all([AuditEntry(action="bulk", detail={"i": i}) for i in range(1203)])
    await db.commit()
    resp = await admin.client.get("/admin/audit/export?format=json&action=bulk")
    data = resp.json()
    assert len(data) == 1203 and len({r["id"] for r in data}) == 1203
    assert [r["id"] for r in data] == sorted((r["id"] for r in data), reverse=True)


async def test_audit_pages_are_admin_only(signed_in):
    agent = await signed_in("agent")
    assert (await agent.client.get("/admin/audit", headers=HTML)).status_code == 403
    assert (await agent.client.get("/admin/audit/export")).status_code == 403


async def test_logins_failures_and_logouts_are_audited(signed_in, client, db):
    s = await signed_in("agent")
    await s.client.post("/logout", data={"csrf_token": s.csrf})
    from tests.support.agents import csrf_from

    token = csrf_from((await client.get("/login")).text)
    await client.post("/login", data={"email": s.agent.email, "password": "nope", "csrf_token": token})
    rows = (await db.scalars(select(AuditEntry).order_by(AuditEntry.id))).all()
    assert [r.action for r in rows] == ["login", "logout", "login_failed"]
    assert all(r.ip == "127.0.0.1" or r.ip for r in rows)
    assert rows[0].detail == {"method": "password"} and rows[2].outcome == "denied"


async def test_append_only_trigger_is_still_installed(db):
    names = (
        (
            await db.execute(
                text(
                    "SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_log'::regclass AND NOT tgisinternal"
                )
            )
        )
        .scalars()
        .all()
    )
    assert "audit_log_no_update_delete" in names
