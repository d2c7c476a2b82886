"""Liveness, readiness (the database answers; the task queue's backlog) and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from supportlens.deps import SessionmakerDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(sessionmaker: SessionmakerDep) -> JSONResponse:
    from supportlens.tasks.status import backlog

    try:
        async with sessionmaker() as db:
            await db.execute(text("SELECT 1"))
            queue = await backlog(db)
    except Exception as exc:
        return JSONResponse({"status": "unavailable", "database": type(exc).__name__}, status_code=503)
    # A backlog is reported, not a reason to stop sending traffic here: ingest does not wait for it.
    return JSONResponse({"status": "ok", "database": "ok", "queue": queue.as_dict()})


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    from supportlens.metrics import registry

    return Response(generate_latest(registry()), media_type=CONTENT_TYPE_LATEST)
