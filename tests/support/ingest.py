"""Batches in the Ingest v1 wire format, and a registered site (fixtures the conftests of tests that send
sessions take in), for tests that send sessions."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from supportlens.capture import sites

ORIGIN = "https://shop.example"
PROJECT = "proj1"
CHROME_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Mobile/15E148 Safari/604.1"
)


def event(kind: str = "click", *, at: datetime | None = None, **fields: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "type": kind,
        "ts": (at or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
        "url": f"{ORIGIN}/pay",
    }
    e.update(fields)
    return e


def batch(
    key: str,
    events: list[dict[str, Any]],
    *,
    session_id: str = "s1abc",
    user_id: str = "u1abc",
    page_num: int | None = 1,
    customer: dict[str, Any] | None = None,
    consent: bool | None = None,
    automation: Any = None,
) -> dict[str, Any]:
    body = {
        "siteKey": key,
        "clarity": {"projectId": PROJECT, "userId": user_id, "sessionId": session_id, "pageNum": page_num},
        "customer": customer,
        "consent": None if consent is None else {"analytics": consent},
        "page": {"url": f"{ORIGIN}/pay", "title": "Pay", "referrer": "", "viewport": {"w": 1280, "h": 800}},
        "events": events,
    }
    if automation is not None:
        body["automation"] = automation
    return body


def headers(origin: str = ORIGIN, ua: str = CHROME_UA) -> dict[str, str]:
    return {"Origin": origin, "User-Agent": ua, "Content-Type": "application/json"}


def ago(**kw: float) -> datetime:
    return datetime.now(UTC) - timedelta(**kw)


@pytest.fixture
async def site_key(db: Any) -> str:
    _, key = await sites.create_site(db, name="Shop", origins=[ORIGIN], clarity_project_id=PROJECT)
    return key


@pytest.fixture
async def consent_site_key(db: Any) -> str:
    _, key = await sites.create_site(
        db,
        name="EU shop",
        origins=["https://eu.shop.example"],
        clarity_project_id=PROJECT,
        require_consent=True,
    )
    return key
