"""Demo plugin for investigation: conversion goals, Jane's failed payment visit and an agent's note.

Jane Doe's newest Dwolla transfer fails with R01 two days before today in the demo world; this seeds
her visit to the shop's /pay page that throws a JavaScript error a minute before that transfer, through
the real ingest path, so the session view, the journey (with its 30-minute badge) and the customer
analytics all have the story to show.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from supportlens_sandbox.demo import DemoContext

JANE = "jane@acme.io"
GOALS = (("url", "/thank-you", "Paid"), ("event", "checkout_started", "Checkout started"))


def configure(ctx: DemoContext) -> None:
    ctx.seeders.append(seed)
    ctx.notes.append("journey:  /customers/jane@acme.io/journey (failed transfer beside a /pay error)")


def _ev(kind: str, url: str, at: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{url}#{kind}#{at.isoformat()}")),
        "type": kind,
        "ts": at.isoformat().replace("+00:00", "Z"),
        "url": url,
        **fields,
    }


def payment_visit(origin: str, error_at: datetime) -> list[dict[str, Any]]:
    """Home, a product, /pay: a button that does nothing (dead and rage clicks), then Pay throws."""
    t0 = error_at - timedelta(seconds=150)
    at = lambda s: t0 + timedelta(seconds=s)  # noqa: E731
    pay = f"{origin}/pay"
    return [
        _ev("navigation", f"{origin}/", at(0), data={"how": "load"}),
        _ev(
            "click",
            f"{origin}/",
            at(6),
            selector="a.product-link",
            x=320,
            y=240,
            data={"text": "Payroll Plus"},
        ),
        _ev("navigation", f"{origin}/products/payroll-plus", at(7), data={"how": "load"}),
        _ev("scroll", f"{origin}/products/payroll-plus", at(15), data={"depth": 80}),
        _ev("custom", f"{origin}/products/payroll-plus", at(30), data={"name": "checkout_started"}),
        _ev("navigation", pay, at(32), data={"how": "load"}),
        _ev("click", pay, at(60), selector="button#pay-later", x=455, y=470, data={"text": "Pay later"}),
        _ev("dead_click", pay, at(61), selector="button#pay-later", x=455, y=470),
        _ev("click", pay, at(61.3), selector="button#pay-later", x=457, y=468, data={"text": "Pay later"}),
        _ev("click", pay, at(61.6), selector="button#pay-later", x=456, y=471, data={"text": "Pay later"}),
        _ev("rage_click", pay, at(61.7), selector="button#pay-later", x=456, y=470),
        _ev("click", pay, at(149.6), selector="button#pay-now", x=455, y=398, data={"text": "Pay now"}),
        _ev(
            "error",
            pay,
            at(150),
            data={"message": "TypeError: Cannot read properties of undefined (reading 'amount')", "line": 42},
        ),
        _ev("scroll", pay, at(170), data={"depth": 100}),
    ]


async def seed(db: Any, ctx: DemoContext) -> None:
    from supportlens.capture import sites
    from supportlens.capture.ingest import ingest_batch
    from supportlens.capture.schemas import IngestBatch
    from supportlens.sessions.goals import ConversionGoal
    from supportlens.sessions.models import SessionAnnotation, UserSession
    from supportlens_sandbox.crm_demo import today_world
    from supportlens_sandbox.sessions_demo import DEMO_CLARITY_PROJECT, DEMO_SITE_KEY

    existing = {(g.kind, g.value) for g in (await db.scalars(select(ConversionGoal))).all()}
    for kind, value, label in GOALS:
        if (kind, value) not in existing:
            db.add(ConversionGoal(kind=kind, value=value, label=label))
    await db.commit()

    site = await sites.make_cache(0).by_key(db, DEMO_SITE_KEY)
    jane = next((c for c in today_world().customers if c.email == JANE), None)
    if site is None or jane is None or not jane.failed_transfers:
        return
    origin = next(iter(sorted(site.allowed_origins)), "https://shop.example")
    error_at = jane.failed_transfers[0].created - timedelta(minutes=1)
    events = payment_visit(origin, error_at)
    session_id = "jpay" + error_at.strftime("%m%d%H%M")
    body = {
        "siteKey": DEMO_SITE_KEY,
        "clarity": {
            "projectId": DEMO_CLARITY_PROJECT,
            "userId": "janedevice1",
            "sessionId": session_id,
            "pageNum": 3,
        },
        "customer": {"email": JANE, "id": f"cus_{jane.dwolla_id}", "name": jane.name},
        "consent": {"analytics": True},
        "page": {"url": events[-1]["url"], "title": "Pay", "referrer": "", "viewport": {"w": 1280, "h": 800}},
        "events": events,
    }
    await ingest_batch(
        db,
        site,
        IngestBatch.model_validate_json(json.dumps(body)),
        client_ip="198.51.100.10",
        user_agent="Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
    )
    session = await db.scalar(select(UserSession).where(UserSession.clarity_session_id == session_id))
    if session is None:
        return
    has_note = await db.scalar(select(SessionAnnotation.id).where(SessionAnnotation.session_id == session.id))
    if has_note is None:
        db.add(
            SessionAnnotation(
                session_id=session.id,
                timestamp=error_at,
                note="Pay now threw a TypeError; a minute later her $225 debit came back R01. Retry offered.",
                category="issue",
                severity="high",
            )
        )
        await db.commit()
