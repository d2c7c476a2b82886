"""Sessions and events written straight to the models: fast and deterministic."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from supportlens.sessions.models import SessionCustomerMapping, SessionEvent, UserSession

SHOP = "https://shop.example"


@dataclass
class Seeded:
    session: UserSession
    events: list[SessionEvent] = field(default_factory=list)

    @property
    def id(self) -> uuid.UUID:
        return self.session.id

    def first(self, etype: str) -> SessionEvent:
        return next(e for e in self.events if e.event_type == etype)


def ev(session_id: uuid.UUID, start: datetime, sec: float, etype: str, url: str, **kw: Any) -> SessionEvent:
    data = kw.pop("data", {})
    return SessionEvent(
        id=uuid.uuid4(),
        session_id=session_id,
        event_type=etype,
        timestamp=start + timedelta(seconds=sec),
        page_url=url,
        event_data=data,
        element_selector=kw.get("selector"),
        x=kw.get("x"),
        y=kw.get("y"),
    )


async def seed_checkout_session(
    sessionmaker: Any,
    *,
    email: str = "jane@acme.io",
    start: datetime | None = None,
    clarity_session_id: str = "s1abc",
    device: str = "desktop",
    mapped: bool = True,
) -> Seeded:
    """A 6-minute session: home, browse, /pay with 3 dead clicks, a rage click and a JavaScript error."""
    start = start or (datetime.now(UTC) - timedelta(days=2)).replace(
        hour=10, minute=36, second=0, microsecond=0
    )
    sid = uuid.uuid4()
    s = UserSession(
        id=sid,
        clarity_project_id="proj1",
        clarity_user_id="user1",
        clarity_session_id=clarity_session_id,
        customer_email=email if mapped else None,
        session_start=start,
        session_end=start + timedelta(seconds=360),
        duration_seconds=360,
        page_views=3,
        entry_url=f"{SHOP}/",
        exit_url=f"{SHOP}/pay",
        event_count=0,
        click_count=6,
        error_count=1,
        rage_click_count=1,
        dead_click_count=3,
        max_scroll_depth=0,
        recording_url=f"https://clarity.microsoft.com/player/proj1/user1/{clarity_session_id}",
        device_type=device,
        browser="Chrome",
        os="macOS",
    )
    vp = {"vw": 1280, "vh": 800}
    events = [
        ev(sid, start, 0, "navigation", f"{SHOP}/", data={"title": "Shop home", **vp}),
        ev(
            sid, start, 4, "click", f"{SHOP}/", x=200, y=120, selector="a#products", data={"text": "Products"}
        ),
        ev(sid, start, 5, "navigation", f"{SHOP}/products", data={"title": "Products", **vp}),
        ev(sid, start, 9, "scroll", f"{SHOP}/products", data={"depth": 65}),
        ev(
            sid,
            start,
            12,
            "click",
            f"{SHOP}/products",
            x=640,
            y=900,
            selector="button.add",
            data={"text": "Add"},
        ),
        # a long idle gap (excluded from active time)
        ev(sid, start, 100, "navigation", f"{SHOP}/pay", data={"title": "Pay", **vp}),
        ev(
            sid,
            start,
            110,
            "click",
            f"{SHOP}/pay",
            x=500,
            y=400,
            selector="button#later",
            data={"text": "Pay later"},
        ),
        ev(sid, start, 111, "dead_click", f"{SHOP}/pay", x=500, y=400, selector="button#later"),
        ev(sid, start, 111.5, "dead_click", f"{SHOP}/pay", x=502, y=401, selector="button#later"),
        ev(sid, start, 112, "dead_click", f"{SHOP}/pay", x=503, y=399, selector="button#later"),
        ev(sid, start, 112.2, "rage_click", f"{SHOP}/pay", x=501, y=400, selector="button#later"),
        ev(
            sid, start, 300, "click", f"{SHOP}/pay", x=640, y=410, selector="button#pay", data={"text": "Pay"}
        ),
        ev(
            sid,
            start,
            300.5,
            "error",
            f"{SHOP}/pay",
            data={"message": "TypeError: Cannot read properties of undefined (reading 'amount')"},
        ),
        ev(sid, start, 320, "custom", f"{SHOP}/pay", data={"name": "checkout_started"}),
    ]
    s.event_count = len(events)
    async with sessionmaker() as db:
        db.add(s)
        await db.flush()
        db.add_all(events)
        if mapped:
            db.add(
                SessionCustomerMapping(
                    session_id=sid,
                    customer_email=email,
                    confidence_score=1.0,
                    mapping_method="email_match",
                    evidence=[
                        {"method": "email_match", "score": 1.0, "reason": "the site said who was logged in"}
                    ],
                )
            )
        await db.commit()
    return Seeded(session=s, events=events)


async def seed_big_session(sessionmaker: Any, n: int = 5000, *, email: str = "big@acme.io") -> UserSession:
    """One session of n events (clicks, scrolls, pages every 50 events, an error every 500)."""
    start = datetime.now(UTC) - timedelta(days=1)
    sid = uuid.uuid4()
    s = UserSession(
        id=sid,
        clarity_project_id="proj1",
        clarity_user_id="bigu",
        clarity_session_id=f"big{uuid.uuid4().hex[:8]}",
        customer_email=email,
        session_start=start,
        session_end=start + timedelta(seconds=n),
        duration_seconds=n,
        page_views=n // 50,
        device_type="desktop",
        event_count=n,
        max_scroll_depth=99,  # as ingest keeps it
        recording_url="https://clarity.microsoft.com/player/proj1/bigu/big",
    )
    rows = []
    for i in range(n):
        page = f"{SHOP}/p/{i // 50}"
        if i % 50 == 0:
            rows.append(
                ev(
                    sid,
                    start,
                    i,
                    "navigation",
                    page,
                    data={"title": f"Page {i // 50}", "vw": 1280, "vh": 800},
                )
            )
        elif i % 500 == 499:
            rows.append(ev(sid, start, i, "error", page, data={"message": f"Error number {i}"}))
        elif i % 7 == 0:
            rows.append(ev(sid, start, i, "scroll", page, data={"depth": i % 100}))
        else:
            rows.append(
                ev(sid, start, i, "click", page, x=(i * 37) % 1200, y=(i * 53) % 2000, selector="div.x")
            )
    async with sessionmaker() as db:
        db.add(s)
        await db.flush()
        for k in range(0, len(rows), 1000):
            db.add_all(rows[k : k + 1000])
            await db.flush()
        db.add(
            SessionCustomerMapping(
                session_id=sid, customer_email=email, confidence_score=1.0, mapping_method="email_match"
            )
        )
        await db.commit()
    return s
