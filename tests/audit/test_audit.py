"""The audit log is append-only on PostgreSQL and customer targets carry no PII."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from supportlens.audit import service as audit
from supportlens.audit.models import AuditEntry


async def test_record_writes_who_what_target_where(db, settings):
    entry = await audit.record(
        db,
        "customer_view",
        actor_email="a@b.c",
        target_type="customer",
        target=audit.customer_ref("Jane@Acme.io", settings),
        detail={"k": 1},
    )
    row = (await db.scalars(select(AuditEntry).where(AuditEntry.id == entry.id))).one()
    assert row.action == "customer_view" and row.occurred_at is not None and row.detail == {"k": 1}
    assert "jane" not in row.target and row.target == audit.customer_ref("jane@acme.io", settings)


async def test_a_session_action_names_the_session_and_the_customer_by_pseudonym(db, settings):
    named = SimpleNamespace(id=uuid.uuid4(), customer_email="Jane@Acme.io")
    anonymous = SimpleNamespace(id=uuid.uuid4(), customer_email=None)
    one = await audit.record_session(
        db, "session_viewed", named, settings=settings, request=None, actor=None, t=5000
    )
    two = await audit.record_session(
        db, "session_exported", anonymous, settings=settings, request=None, actor=None, n=2
    )
    assert (one.target_type, one.target) == ("session", str(named.id))
    assert one.detail == {"t": 5000, "customer": audit.customer_ref("jane@acme.io", settings)}
    assert "jane" not in str(one.detail).lower()
    assert (two.target, two.detail) == (str(anonymous.id), {"n": 2})


async def test_audit_rows_cannot_be_updated_or_deleted(db):
    entry_id = (await audit.record(db, "login", actor_email="a@b.c")).id
    with pytest.raises(DBAPIError, match="append-only"):
        await db.execute(update(AuditEntry).where(AuditEntry.id == entry_id).values(action="tampered"))
    await db.rollback()
    with pytest.raises(DBAPIError, match="append-only"):
        await db.execute(delete(AuditEntry).where(AuditEntry.id == entry_id))
    await db.rollback()
    with pytest.raises(DBAPIError, match="append-only"):
        await db.execute(text("DELETE FROM audit_log"))
    await db.rollback()
    assert (await db.scalars(select(AuditEntry.action))).all() == ["login"]
