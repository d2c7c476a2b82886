"""Session view at size: one session of 5,000 events on PostgreSQL.

    .venv/bin/python bench/session_view.py              # 5,000 events, 60 requests per endpoint
    .venv/bin/python bench/session_view.py --events 20000 --requests 100

Creates a throwaway PostgreSQL database, runs the app under Uvicorn on a free port, seeds one
session, then measures over real HTTP (sequential requests, after a warm-up):
  - GET /sessions/{id}                            the full session page: the story of every event,
                                                  analytics, markers, the embedded first window
  - GET /api/clarity/sessions/{id}/timeline       the first timeline window (200 events from the start)
  - both, one after the other                     what an agent waits for opening a session
  - the timeline at random offsets and the events API (200 events), for comparison
and in Chromium: that the player holds one bounded window of events, a bounded event list and a
bounded story in the DOM while it seeks across the whole session and steps forward.
Target: p95 <= 150 ms for the page, for its first timeline window, and for the two together.

The app runs as `supportlens serve` runs each worker: with its startup objects frozen out of the
cyclic garbage collector (SUPPORTLENS_GC_FREEZE). `--no-gc-freeze` measures without, and the full
collections that ran during the timed requests, and their longest pause, are printed either way.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SUPPORTLENS_LOG_LEVEL", "WARNING")

import httpx2  # noqa: E402
from tests.investigation.seed import seed_big_session  # noqa: E402
from tests.support import database  # noqa: E402
from tests.support.agents import PASSWORD, make_agent, sign_in  # noqa: E402
from tests.support.live import LiveServer  # noqa: E402

from supportlens.app import create_app  # noqa: E402
from supportlens.config import Settings  # noqa: E402
from supportlens.db import migrate  # noqa: E402
from supportlens.db.engine import make_engine, make_sessionmaker  # noqa: E402
from supportlens.investigation.story import MAX_ROWS  # noqa: E402

TARGET_P95_MS = 150.0
DOM_LIST_MAX = 40
WINDOW_MAX = 600
STORY_ROWS_MAX = MAX_ROWS  # investigation/story.py: the story's rows, whatever the number of events


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


async def timed(client: httpx2.AsyncClient, url: str, n: int, params: Any = None) -> list[float]:
    out = []
    for i in range(n):
        p = params(i) if callable(params) else params
        t0 = time.perf_counter()
        r = await client.get(url, params=p)
        out.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200:
            raise SystemExit(f"{url} answered {r.status_code}: {r.text[:200]}")
    return out


class FullCollections:
    """The cyclic collector's full (generation 2) passes while it is installed, and their pauses."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._t0 = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            self.pauses.append((time.perf_counter() - self._t0) * 1000)

    def __enter__(self) -> FullCollections:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


def line(name: str, ms: list[float], target: float | None) -> str:
    p50, p95 = statistics.median(ms), pct(ms, 95)
    verdict = "" if target is None else ("  OK" if p95 <= target else "  OVER TARGET")
    goal = f"target p95 <= {target:.0f} ms" if target is not None else "(no target)"
    return f"  {name:<44} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   {goal}{verdict}"


async def browser_check(base_url: str, session_id: str, email: str, duration_ms: int) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    async with async_playwright() as pw:
        b = await pw.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"], headless=True
        )
        ctx = await b.new_context(viewport={"width": 1440, "height": 900}, base_url=base_url)
        page = await ctx.new_page()
        await page.goto("/login")
        await page.fill("#email", email)
        await page.fill("#password", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(lambda u: "/login" not in u)
        t0 = time.perf_counter()
        await page.goto(f"/sessions/{session_id}")
        await page.wait_for_selector("[data-player][data-ready=true]")
        load_ms = (time.perf_counter() - t0) * 1000
        js_state = (
            "() => { const p = document.querySelector('[data-player]').__player.state;"
            " return {win: p.win.length, li: document.querySelectorAll('.player-events li').length,"
            " story: document.querySelectorAll('.story-list li').length,"
            " nodes: document.getElementsByTagName('*').length, t: p.t}; }"
        )
        worst = {"win": 0, "li": 0, "nodes": 0, "story": 0}
        seeks = []
        for frac in (0.1, 0.35, 0.6, 0.85, 0.99, 0.5, 0.02):
            target = int(duration_ms * frac)
            s0 = time.perf_counter()
            await page.evaluate(f"() => document.querySelector('[data-player]').__player.seek({target})")
            seeks.append((time.perf_counter() - s0) * 1000)
            for _ in range(30):  # step forward through events (pages more in when the window runs out)
                await page.keyboard.press("ArrowRight")
            state = await page.evaluate(js_state)
            for k in worst:
                worst[k] = max(worst[k], state[k])
        await page.click("[data-speed='4']")
        await page.click("[data-action=play]")
        await page.wait_for_timeout(1500)
        state = await page.evaluate(js_state)
        for k in worst:
            worst[k] = max(worst[k], state[k])
        await b.close()
    return {"load_ms": load_ms, "seek_p95": pct(seeks, 95), **worst}


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--requests", type=int, default=60)
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--no-gc-freeze", action="store_true", help="leave startup objects in the cyclic GC")
    args = ap.parse_args()
    url = await database.create_database(ROOT / "artifacts")
    try:
        await migrate.upgrade_async(url)
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            environment="test",
            database_url=url,
            secret_key="bench-secret-key",
            run_worker=False,
            log_json=False,
            log_level="WARNING",
            gc_freeze=not args.no_gc_freeze,
        )
        engine = make_engine(settings)
        sm = make_sessionmaker(engine)
        t0 = time.perf_counter()
        session = await seed_big_session(sm, n=args.events)
        print(f"seeded one session of {args.events:,} events in {time.perf_counter() - t0:.1f} s")
        agent = await make_agent(sm, "agent", email="bench@example.com")
        await engine.dispose()
        sid = str(session.id)
        dur_ms = args.events * 1000
        with LiveServer(create_app(settings)) as server:
            async with httpx2.AsyncClient(base_url=server.url, timeout=30) as client:
                await sign_in(client, agent.email)
                page_url, window_url = f"/sessions/{sid}", f"/api/clarity/sessions/{sid}/timeline"
                html, api = {"Accept": "text/html"}, {"Accept": "application/json"}
                for _ in range(3):  # warm-up
                    await client.get(page_url, headers=html)
                    await client.get(window_url, params={"limit": 200}, headers=api)
                page, first, both = [], [], []
                full_gc = FullCollections()
                with full_gc:
                    for _ in range(args.requests):  # as an agent opens a session: the page, then its window
                        t0 = time.perf_counter()
                        r = await client.get(page_url, headers=html)
                        t1 = time.perf_counter()
                        w = await client.get(window_url, params={"limit": 200}, headers=api)
                        t2 = time.perf_counter()
                        if r.status_code != 200 or w.status_code != 200 or "story-list" not in r.text:
                            raise SystemExit(f"page {r.status_code} / window {w.status_code}: {r.text[:200]}")
                        page.append((t1 - t0) * 1000)
                        first.append((t2 - t1) * 1000)
                        both.append((t2 - t0) * 1000)
                client.headers["Accept"] = "application/json"
                rng = random.Random(7)
                timeline = await timed(
                    client,
                    f"/api/clarity/sessions/{sid}/timeline",
                    args.requests,
                    lambda i: {"from_ms": rng.randrange(0, dur_ms), "limit": 200},
                )
                events = await timed(
                    client, f"/api/clarity/sessions/{sid}/events", args.requests, {"limit": 200}
                )
                size = len((await client.get(f"/sessions/{sid}", headers={"Accept": "text/html"})).content)
            print(f"\nPostgreSQL, one session of {args.events:,} events, {args.requests} requests each:")
            print(line("GET /sessions/{id} (page with the story)", page, TARGET_P95_MS))
            print(line("GET .../{id}/timeline (first window, 200)", first, TARGET_P95_MS))
            print(line("page + first window, one after the other", both, TARGET_P95_MS))
            print(line("GET .../{id}/timeline (random offsets, 200)", timeline, None))
            print(line("GET .../{id}/events (events API, 200)", events, None))
            print(f"  session page size: {size / 1024:.0f} KiB")
            frozen = "off" if args.no_gc_freeze else "on"
            longest = max(full_gc.pauses, default=0.0)
            print(
                f"  full GC passes during those {args.requests} page + window pairs: {len(full_gc.pauses)},"
                f" longest {longest:.1f} ms (startup objects frozen: {frozen})"
            )
            ok = all(pct(x, 95) <= TARGET_P95_MS for x in (page, first, both))
            if not args.no_browser:
                b = await browser_check(server.url, sid, agent.email, dur_ms)
                print("\nChromium, seeking across the session, stepping and playing:")
                print(f"  page ready in {b['load_ms']:.0f} ms; seek p95 {b['seek_p95']:.0f} ms")
                held = b["win"]
                total = f"{args.events:,}"
                print(f"  events held by the player at most {held:>5}   target <= {WINDOW_MAX} (of {total})")
                print(f"  event rows in the DOM at most     {b['li']:>5}   target <= {DOM_LIST_MAX}")
                story = b["story"]
                print(f"  story rows in the DOM             {story:>5}   target <= {STORY_ROWS_MAX}")
                print(f"  DOM elements on the page at most  {b['nodes']:>5}")
                ok = (
                    ok and b["win"] <= WINDOW_MAX and b["li"] <= DOM_LIST_MAX and b["story"] <= STORY_ROWS_MAX
                )
        print("\nRESULT:", "all targets met" if ok else "a target was missed")
        return 0 if ok else 1
    finally:
        await database.drop_database(url)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
