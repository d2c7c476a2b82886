"""The audit log is append-only on PostgreSQL and customer targets carry no PII."""

from __future__ import annotations

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DBAPIError

from supportlens.audit import service as audit
from supportlens.audit.models import AuditEntry


async def test_record_writes_who_what_target_where(db):
    entry = await audit.record(
        db,
        "customer_view",
        actor_email="a@b.c",
        target_type="customer",
        target=audit.customer_ref("Jane@Acme.io"),
        detail={"k": 1},
    )
    row = (await db.scalars(select(AuditEntry).where(AuditEntry.id == entry.id))).one()
    assert row.action == "customer_view" and row.occurred_at is not None and row.detail == {"k": 1}
    assert "jane" not in row.target and row.target == audit.customer_ref("jane@acme.io")


@pytest.mark.postgres_only
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
