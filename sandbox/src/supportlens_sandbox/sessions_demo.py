"""Demo plugin for sessions: the demo shop on its own origin, its site key, and weeks of past sessions.

Past sessions go through the real ingest service (masking, session upsert, mapping engine), for the
headline demo customers of the demo world, identified and anonymous, with errors, rage and dead clicks.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from supportlens_sandbox.demo import DemoContext, DemoServer

DEMO_SITE_KEY = "pk_live_demo_shop_0123456789abcdef"
# The Clarity simulator's project (clarity_demo.DEMO_PROJECT): one project id on both sides, so the
# recordings list matches the shop's sessions and its live insights are this site's ("is it only
# this customer?" shows for the shop's pages).
DEMO_CLARITY_PROJECT = "demo123"
SHOP_PORT_OFFSET = 4
SHOP_PAGES = ("/", "/products/payroll-basic", "/products/payroll-plus", "/products/invoicing", "/pay")
UAS = {
    "desktop": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "windows": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "mobile": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "tablet": "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1",
}


def shop_url(ctx: DemoContext) -> str:
    return f"http://{ctx.host}:{ctx.port + SHOP_PORT_OFFSET}"


def configure(ctx: DemoContext) -> None:
    url = shop_url(ctx)

    def factory() -> Any:
        from supportlens_sandbox.shop.app import create_shop_app

        return create_shop_app(
            supportlens_url=ctx.base_url, site_key=DEMO_SITE_KEY, clarity_project=DEMO_CLARITY_PROJECT
        )

    ctx.servers.append(DemoServer("demo shop", factory, ctx.port + SHOP_PORT_OFFSET, host=ctx.host))

    async def seed(db: Any, _: DemoContext) -> None:
        await ensure_demo_site(db, url)
        await seed_sessions(db)

    ctx.seeders.append(seed)
    from supportlens_sandbox.shop.app import DEMO_PASSWORD

    ctx.notes.append(
        f"shop:     {url}  (sign in as jane@acme.io / {DEMO_PASSWORD}; it runs clarity-js + supportlens.js)"
    )


async def ensure_demo_site(db: Any, origin: str) -> None:
    from supportlens.capture import sites

    if await sites.make_cache(0).by_key(db, DEMO_SITE_KEY) is None:
        await sites.create_site(
            db, name="Demo shop", origins=[origin], clarity_project_id=DEMO_CLARITY_PROJECT, key=DEMO_SITE_KEY
        )


def _cid(rng: random.Random, n: int = 7) -> str:
    return "".join(rng.choice("0123456789abcdefghijklmnopqrstuvwxyz") for _ in range(n))


def _events(rng: random.Random, origin: str, start: datetime, trouble: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    t = start

    def add(kind: str, url: str, **fields: Any) -> None:
        out.append(
            {
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "type": kind,
                "ts": t.isoformat().replace("+00:00", "Z"),
                "url": url,
                **fields,
            }
        )

    pages = [p for p in SHOP_PAGES[:-1] if rng.random() < 0.7] or ["/"]
    if trouble or rng.random() < 0.5:
        pages.append("/pay")
    for path in pages:
        url = origin + path
        add("navigation", url, data={"how": "load"})
        t += timedelta(seconds=rng.randint(3, 20))
        add("scroll", url, data={"depth": rng.choice((35, 60, 80, 100))})
        for _ in range(rng.randint(1, 3)):
            t += timedelta(seconds=rng.randint(2, 25))
            add(
                "click",
                url,
                selector=rng.choice(("a.product-link", "button#details-toggle", "a#buy")),
                x=rng.randint(80, 900),
                y=rng.randint(120, 700),
                data={"text": rng.choice(("Buy now", "Show details", "Payroll Plus"))},
            )
        if path == "/pay" and trouble:
            for _ in range(3):
                t += timedelta(milliseconds=250)
                add("click", url, selector="button#pay-now", x=455, y=398, data={"text": "Pay now"})
            add(
                "rage_click",
                url,
                selector="button#pay-now",
                x=455,
                y=398,
                data={"text": "Pay now", "clicks": 3},
            )
            t += timedelta(seconds=1)
            add("dead_click", url, selector="button#pay-now", x=455, y=398, data={"text": "Pay now"})
            if rng.random() < 0.7:
                t += timedelta(seconds=4)
                add(
                    "click",
                    url,
                    selector="button#pay-saved",
                    x=590,
                    y=398,
                    data={"text": "Pay with saved card"},
                )
                add(
                    "error",
                    url,
                    data={
                        "message": "Uncaught TypeError: Cannot read properties of undefined "
                        "(reading 'charge')",
                        "source": origin + "/static/shop/shop.js",
                        "line": 22,
                        "col": 14,
                    },
                )
        t += timedelta(seconds=rng.randint(5, 40))
    return out


async def seed_sessions(
    db: Any, *, customers: int = 8, now: datetime | None = None, origin: str = "https://shop.example"
) -> int:
    """Past sessions for the first `customers` demo customers over the last ~3 weeks; returns how many."""
    from supportlens.capture import sites
    from supportlens.capture.ingest import ingest_batch
    from supportlens.capture.schemas import IngestBatch
    from supportlens_sandbox.world import demo_world

    site = await sites.make_cache(0).by_key(db, DEMO_SITE_KEY)
    if site is None:
        return 0
    origin = next(iter(sorted(site.allowed_origins)), origin)
    rng = random.Random(20261126)
    now = now or datetime.now(UTC)
    count = 0

    async def visit(
        r: random.Random,
        c: Any,
        index: int,
        where: tuple[str, str, str],  # (browser, device kind, client IP)
        start: datetime,
        *,
        identified: bool,
        trouble: bool,
    ) -> datetime:
        """One visit sent as one batch; returns when its last event happened."""
        user_id, device, ip = where
        events = _events(r, origin, start, trouble)
        body = {
            "siteKey": DEMO_SITE_KEY,
            "clarity": {
                "projectId": DEMO_CLARITY_PROJECT,
                "userId": user_id,
                "sessionId": _cid(r),
                "pageNum": sum(1 for e in events if e["type"] == "navigation"),
            },
            "customer": {
                "email": c.email,
                "id": f"cus_{c.dwolla_id or index}",
                "name": f"{c.first_name} {c.last_name}",
            }
            if identified
            else None,
            "consent": {"analytics": True},
            "page": {
                "url": events[-1]["url"],
                "title": "Acme Pay shop",
                "referrer": "",
                "viewport": {"w": 1280, "h": 800},
            },
            "events": events,
        }
        await ingest_batch(
            db,
            site,
            IngestBatch.model_validate_json(json.dumps(body)),
            client_ip=ip,
            user_agent=UAS[device],
        )
        return max(datetime.fromisoformat(e["ts"].replace("Z", "+00:00")) for e in events)

    first_sign_in_end: datetime | None = None
    customers_seeded = demo_world().customers[:customers]
    for index, c in enumerate(customers_seeded):
        device = rng.choice(("desktop", "desktop", "windows", "mobile", "tablet"))
        user_id = _cid(rng)
        ip = f"198.51.100.{10 + index}"
        sessions = 7 if index == 0 else (3 + rng.randint(0, 3) if index < 3 else 1 + rng.randint(0, 2))
        for n in range(sessions):
            days = rng.uniform(0.2, 21) if not (index == 0 and n == sessions - 1) else 34.0
            start = (now - timedelta(days=days)).replace(microsecond=0)
            identified = rng.random() < 0.75 or n == 0
            trouble = (index == 0 and n == 0) or rng.random() < 0.35
            ended = await visit(
                rng, c, index, (user_id, device, ip), start, identified=identified, trouble=trouble
            )
            if index == 0 and n == 0:
                first_sign_in_end = ended
            count += 1
    if customers_seeded and first_sign_in_end is not None:
        # The first customer's phone, never signed in: on the home Wi-Fi minutes after a sign-in on
        # the computer, then two days later on a mobile carrier's address that says nothing by itself.
        # The second visit is linked through the first ("other visit of this browser ...").
        r = random.Random(20261206)
        phone = _cid(r)
        home_visit = first_sign_in_end + timedelta(minutes=6)
        if home_visit < now - timedelta(days=2, hours=1):
            c = customers_seeded[0]
            for ip, start in (
                ("198.51.100.10", home_visit),
                ("203.0.113.77", home_visit + timedelta(days=2)),
            ):
                await visit(r, c, 0, (phone, "mobile", ip), start, identified=False, trouble=False)
                count += 1
    return count
