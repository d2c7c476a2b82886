"""The audit log for administrators: filter by action, actor, target and dates; export as CSV or JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from sqlalchemy import Select, select

from supportlens.audit import service as audit
from supportlens.audit.models import AuditEntry
from supportlens.auth.deps import AdminPrincipal, DbDep, SettingsDep
from supportlens.deps import SessionmakerDep
from supportlens.params import OptionalDay, RowId
from supportlens.web.pages import render

router = APIRouter(tags=["audit"], include_in_schema=False)

PAGE_SIZE = 100
EXPORT_CHUNK = 500
COLUMNS = (
    "id",
    "occurred_at",
    "action",
    "outcome",
    "actor_email",
    "actor_role",
    "actor_id",
    "target_type",
    "target",
    "ip",
    "request_id",
    "detail",
)


@dataclass
class AuditFilter:
    action: str = ""
    actor: str = ""
    target: str = ""
    start: date | None = None
    end: date | None = None
    # What `target` is matched as: a customer's e-mail is looked up by its pseudonym, as the log stores it.
    target_value: str = ""

    def apply(self, stmt: Select[Any]) -> Select[Any]:
        if self.action:
            stmt = stmt.where(AuditEntry.action == self.action)
        if self.actor:
            stmt = stmt.where(
                AuditEntry.actor_email.ilike(f"%{_escape_like(self.actor.lower())}%", escape="\\")
            )
        if self.target:
            stmt = stmt.where(AuditEntry.target == self.target_value)
        if self.start:
            stmt = stmt.where(AuditEntry.occurred_at >= datetime.combine(self.start, time.min, UTC))
        if self.end:
            stmt = stmt.where(
                AuditEntry.occurred_at < datetime.combine(self.end + timedelta(days=1), time.min, UTC)
            )
        return stmt

    def query_string(self) -> str:
        from urllib.parse import urlencode

        pairs = {
            "action": self.action,
            "actor": self.actor,
            "target": self.target,
            "from": self.start.isoformat() if self.start else "",
            "to": self.end.isoformat() if self.end else "",
        }
        return urlencode({k: v for k, v in pairs.items() if v})


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def audit_filter(
    action: Annotated[str, Query(max_length=64)] = "",
    actor: Annotated[str, Query(max_length=254)] = "",
    target: Annotated[str, Query(max_length=256)] = "",
    start: Annotated[OptionalDay, Query(alias="from")] = None,
    end: Annotated[OptionalDay, Query(alias="to")] = None,
    *,
    settings: SettingsDep,
) -> AuditFilter:
    target = target.strip()
    value = audit.customer_ref(target, settings) if "@" in target else target
    return AuditFilter(action.strip(), actor.strip(), target, start, end, value)


FilterDep = Annotated[AuditFilter, Depends(audit_filter)]


def row_dict(e: AuditEntry) -> dict[str, Any]:
    return {
        "id": e.id,
        "occurred_at": e.occurred_at.isoformat(),
        "action": e.action,
        "outcome": e.outcome,
        "actor_email": e.actor_email,
        "actor_role": e.actor_role,
        "actor_id": str(e.actor_id) if e.actor_id else None,
        "target_type": e.target_type,
        "target": e.target,
        "ip": e.ip,
        "request_id": e.request_id,
        "detail": e.detail or {},
    }


@router.get("/admin/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request,
    db: DbDep,
    principal: AdminPrincipal,
    flt: FilterDep,
    before: Annotated[RowId | None, Query()] = None,
) -> HTMLResponse:
    stmt = flt.apply(select(AuditEntry)).order_by(AuditEntry.id.desc()).limit(PAGE_SIZE + 1)
    if before:
        stmt = stmt.where(AuditEntry.id < before)
    rows = list((await db.scalars(stmt)).all())
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    actions = (await db.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action))).all()
    return render(
        request,
        "audit/audit.html",
        {
            "rows": [row_dict(r) for r in rows],
            "actions": actions,
            "flt": flt,
            "qs": flt.query_string(),
            "next_before": rows[-1].id if more and rows else None,
        },
    )


async def _stream_rows(sessionmaker: Any, flt: AuditFilter) -> AsyncIterator[dict[str, Any]]:
    """Keyset pages over a fresh session, so the export streams without holding every row."""
    last_id: int | None = None
    async with sessionmaker() as db:
        while True:
            stmt = flt.apply(select(AuditEntry)).order_by(AuditEntry.id.desc()).limit(EXPORT_CHUNK)
            if last_id is not None:
                stmt = stmt.where(AuditEntry.id < last_id)
            chunk = list((await db.scalars(stmt)).all())
            if not chunk:
                return
            for e in chunk:
                yield row_dict(e)
            last_id = chunk[-1].id
            db.expunge_all()


async def _csv(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(COLUMNS)
    async for r in rows:
        values = [json.dumps(r["detail"], sort_keys=True) if c == "detail" else r[c] for c in COLUMNS]
        # Spreadsheet formula injection: a cell starting with = + - @ is prefixed with a quote.
        writer.writerow(_csv_safe(v) for v in values)
        if buf.tell() > 32_000:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def _csv_safe(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


async def _json(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    yield "["
    first = True
    async for r in rows:
        yield ("" if first else ",") + "\n" + json.dumps(r, sort_keys=True)
        first = False
    yield "\n]\n"


@router.get("/admin/audit/export")
async def audit_export(
    request: Request,
    db: DbDep,
    principal: AdminPrincipal,
    flt: FilterDep,
    sessionmaker: SessionmakerDep,
    format: Literal["csv", "json"] = "csv",
) -> StreamingResponse:
    """The filtered log as CSV or JSON, streamed; the export itself is audited."""
    await audit.record(
        db,
        "audit_export",
        request=request,
        actor=principal.agent,
        target_type="audit_log",
        detail={"format": format, "filter": flt.query_string()},
    )
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    rows = _stream_rows(sessionmaker, flt)
    if format == "json":
        body, media = _json(rows), "application/json"
    else:
        body, media = _csv(rows), "text/csv; charset=utf-8"
    return StreamingResponse(
        body,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="supportlens-audit-{stamp}.{format}"',
            "Cache-Control": "no-store",
        },
    )
