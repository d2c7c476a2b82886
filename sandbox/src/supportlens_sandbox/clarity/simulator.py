"""Clarity's server side, simulated for the demo and the tests.

- ``GET /export-data/api/v1/project-live-insights``: bearer check (401; 403 for a token of another
  project), ``numOfDays`` 1..3 and dimension names validated (400), 10 calls per project per UTC day
  (then 429), the documented answer: ``[{"metricName": ..., "information": [{...}]}]`` with counts
  as strings. Figures come from a seed (same seed, same figures) plus the sessions it has seen.
- ``POST /mcp/recordings/sample``: the recordings list; ``filters.date`` missing gives 500 like the
  real one. Items carry a player ``link`` and the timeline with smart events.
- ``POST /collect``: where clarity-js uploads (gzip or text payloads); always 204. The envelope's
  (projectId, userId, sessionId, pageNum, url) make the sessions the recordings list returns.

``state.export_requests`` counts every request that reached the export endpoint, so tests can
prove what was (not) sent.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import product
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

log = logging.getLogger(__name__)

DIMENSION_VALUES: dict[str, list[str]] = {
    "Browser": ["Chrome", "Safari", "Edge", "Firefox"],
    "Device": ["PC", "Mobile", "Tablet"],
    "Country/Region": ["United States", "United Kingdom", "Germany", "Canada"],
    "OS": ["Windows", "MacOS", "Android", "iOS"],
    "Source": ["google", "direct", "newsletter"],
    "Medium": ["organic", "(none)", "email"],
    "Campaign": ["(none)", "autumn-sale"],
    "Channel": ["Organic search", "Direct", "Email"],
}
DIMENSIONS = ("Browser", "Device", "Country/Region", "OS", "Source", "Medium", "Campaign", "Channel", "URL")

# Demo site pages: (path, title, daily sessions, rates in % of sessions for each frustration metric).
DEFAULT_PAGES: list[tuple[str, str, int, dict[str, float]]] = [
    ("/", "Home", 1800, {}),
    ("/pricing", "Pricing", 620, {}),
    ("/login", "Sign in", 900, {"DeadClickCount": 3.0}),
    ("/account", "Your account", 700, {}),
    ("/account/bank", "Bank accounts", 260, {"QuickbackClick": 9.0}),
    ("/transfers", "Transfers", 480, {}),
    ("/checkout", "Checkout", 410, {}),
    ("/pay", "Pay", 350, {"RageClickCount": 14.0, "DeadClickCount": 11.0, "ScriptErrorCount": 9.0}),
    ("/support", "Support", 150, {}),
]
BASE_RATES = {
    "RageClickCount": 2.2,
    "DeadClickCount": 4.5,
    "ExcessiveScroll": 1.5,
    "QuickbackClick": 2.8,
    "ScriptErrorCount": 1.6,
    "ErrorClickCount": 0.7,
}
FRUSTRATION_METRICS = tuple(BASE_RATES)
OTHER_METRICS = ("Traffic", "ScrollDepth", "EngagementTime", "PopularPages")
SMART_EVENT_WORDS = {"rage": "Rage clicks", "dead": "Dead click", "quickback": "Quickback"}


@dataclass
class SimPage:
    url: str
    title: str
    start_ms: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class SimSession:
    project_id: str
    user_id: str
    session_id: str
    started_at: datetime
    duration_seconds: int = 0
    active_seconds: int = 0
    clicks: int = 0
    pages: list[SimPage] = field(default_factory=list)
    rage: int = 0
    dead: int = 0
    quickback: int = 0


@dataclass
class ClaritySimState:
    token: str = "sim-clarity-token"  # noqa: S105 (the simulator's own test token)
    project_id: str = "demo123"
    seed: int = 7
    daily_quota: int = 10
    site_origin: str = "https://shop.example"
    forbidden_tokens: set[str] = field(default_factory=set)
    pages: list[tuple[str, str, int, dict[str, float]]] = field(default_factory=lambda: list(DEFAULT_PAGES))
    export_requests: int = 0  # every request that reached the export endpoint
    export_calls: dict[str, int] = field(default_factory=dict)  # quota used per UTC day
    recordings_requests: int = 0
    uploads: int = 0
    sessions: dict[tuple[str, str, str], SimSession] = field(default_factory=dict)
    # raw items appended to every recordings answer (to show clients survive unknown shapes)
    extra_recordings: list[Any] = field(default_factory=list)
    # Optional: more sessions Clarity "recorded" (the demo reads the sessions its seed data made).
    session_loader: Callable[[], list[SimSession]] | None = None
    _loaded_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    # -- sessions (uploads, demo seeding) -------------------------------------------------------

    def refresh(self) -> None:
        if self.session_loader is None or time.monotonic() - self._loaded_at < 5:
            return
        self._loaded_at = time.monotonic()
        try:
            loaded = self.session_loader()
        except Exception:
            log.warning("clarity simulator: loading sessions failed", exc_info=True)
            return
        with self.lock:
            for sess in loaded:
                self.sessions.setdefault((sess.project_id, sess.user_id, sess.session_id), sess)

    def add_session(self, session: SimSession) -> None:
        with self.lock:
            self.sessions[(session.project_id, session.user_id, session.session_id)] = session

    def record_upload(self, body: bytes, now: datetime | None = None) -> bool:
        """Read one clarity-js upload (gzip or text). Returns False for what it cannot read."""
        try:
            if body[:2] == b"\x1f\x8b":
                body = gzip.decompress(body)
            payload = json.loads(body.decode("utf-8"))
            envelope = payload["e"]
            project_id, user_id, session_id = (str(envelope[i]) for i in (4, 5, 6))
            page_num = int(envelope[7])
            url = str(envelope[11]) if len(envelope) > 11 else ""
            analysis = payload.get("a") or []
            if isinstance(analysis, str):
                analysis = json.loads(analysis)
        except (ValueError, KeyError, IndexError, TypeError, OSError):
            return False
        now = now or datetime.now(UTC)
        clicks = sum(1 for ev in analysis if isinstance(ev, list) and len(ev) > 1 and ev[1] == 9)
        with self.lock:
            self.uploads += 1
            key = (project_id, user_id, session_id)
            s = self.sessions.get(key)
            if s is None:
                s = SimSession(project_id, user_id, session_id, started_at=now)
                self.sessions[key] = s
            s.clicks += clicks
            s.duration_seconds = max(s.duration_seconds, int((now - s.started_at).total_seconds()))
            s.active_seconds = s.duration_seconds
            if url and (len(s.pages) < page_num or not s.pages or s.pages[-1].url != url):
                if not any(p.url == url for p in s.pages[-1:]):
                    s.pages.append(
                        SimPage(
                            url=url[:2000],
                            title=urlsplit(url).path or "/",
                            start_ms=int((now - s.started_at).total_seconds() * 1000),
                        )
                    )
        return True

    # -- export figures --------------------------------------------------------------------------

    def _rng(self, *parts: Any) -> random.Random:
        digest = hashlib.sha256(repr((self.seed, *parts)).encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def _urls(self) -> list[tuple[str, int, dict[str, float]]]:
        self.refresh()
        out = {self.site_origin.rstrip("/") + p: (n, rates) for p, _, n, rates in self.pages}
        seen: dict[str, int] = {}
        with self.lock:
            for s in self.sessions.values():
                for page in s.pages:
                    seen[page.url] = seen.get(page.url, 0) + 1
        for url, count in seen.items():
            path = urlsplit(url).path or "/"
            origin_url = self.site_origin.rstrip("/") + path
            if url in out or origin_url in out:
                continue
            out[url] = (count, {})
        return [(u, n, r) for u, (n, r) in out.items()]

    def insights(self, num_of_days: int, dimensions: list[str]) -> list[dict[str, Any]]:
        urls = self._urls()
        value_lists: list[list[str]] = []
        for d in dimensions:
            value_lists.append([u for u, _, _ in urls] if d == "URL" else DIMENSION_VALUES[d])
        combos = list(product(*value_lists)) if dimensions else [()]
        by_url = {u: (n, r) for u, n, r in urls}
        total_daily = sum(n for _, n, _ in urls)
        rows_by_metric: dict[str, list[dict[str, Any]]] = {m: [] for m in OTHER_METRICS + FRUSTRATION_METRICS}
        for combo in combos[:1000]:
            dims = dict(zip(dimensions, combo, strict=True))
            url = dims.get("URL")
            daily, special = by_url[url] if url else (total_daily, {})
            share = 1.0
            for d, v in dims.items():
                if d != "URL":
                    vals = DIMENSION_VALUES[d]
                    weights = [len(vals) - i for i in range(len(vals))]
                    share *= weights[vals.index(v)] / sum(weights)
            rng = self._rng(num_of_days, tuple(sorted(dims.items())))
            sessions = max(1, round(daily * num_of_days * share * rng.uniform(0.9, 1.1)))
            users = max(1, round(sessions * rng.uniform(0.68, 0.8)))
            bots = round(sessions * rng.uniform(0.05, 0.12))
            rows_by_metric["Traffic"].append(
                {
                    "totalSessionCount": str(sessions),
                    "totalBotSessionCount": str(bots),
                    "distantUserCount": str(users),
                    "PagesPerSessionPercentage": round(rng.uniform(1.6, 3.2), 4),
                    **dims,
                }
            )
            scroll = round(rng.uniform(35, 80), 4)
            rows_by_metric["ScrollDepth"].append({"averageScrollDepth": scroll, **dims})
            rows_by_metric["EngagementTime"].append(
                {"totalTime": str(rng.randint(60, 400)), "activeTime": str(rng.randint(20, 150)), **dims}
            )
            if url:
                rows_by_metric["PopularPages"].append({"url": url, "visitsCount": str(sessions)})
            for metric in FRUSTRATION_METRICS:
                if url:
                    rate = special.get(metric, BASE_RATES[metric] * rng.uniform(0.5, 1.2))
                else:
                    weighted = sum(n * r.get(metric, BASE_RATES[metric]) for _, n, r in urls)
                    rate = weighted / max(1, total_daily)
                rate = round(min(100.0, rate * rng.uniform(0.93, 1.07)), 2)
                with_metric = round(sessions * rate / 100)
                rows_by_metric[metric].append(
                    {
                        "sessionsCount": str(sessions),
                        "sessionsWithMetricPercentage": rate,
                        "sessionsWithoutMetricPercentage": round(100 - rate, 2),
                        "pagesViews": str(round(sessions * 1.3)),
                        "subTotal": str(with_metric * rng.randint(1, 3)),
                        **dims,
                    }
                )
        return [{"metricName": m, "information": rows} for m, rows in rows_by_metric.items() if rows]

    # -- recordings -----------------------------------------------------------------------------

    def recordings(self, start: datetime, end: datetime, count: int, sort_by: int) -> list[Any]:
        self.refresh()
        with self.lock:
            chosen = [s for s in self.sessions.values() if start <= s.started_at <= end]
        keyfns = {
            0: (lambda s: s.started_at, True),
            1: (lambda s: s.started_at, False),
            2: (lambda s: s.duration_seconds, False),
            3: (lambda s: s.duration_seconds, True),
            4: (lambda s: s.clicks, False),
            5: (lambda s: s.clicks, True),
            6: (lambda s: len(s.pages), False),
            7: (lambda s: len(s.pages), True),
        }
        keyfn, reverse = keyfns.get(sort_by, keyfns[0])
        chosen.sort(key=keyfn, reverse=reverse)
        items: list[Any] = [self._item(s) for s in chosen[: max(1, min(count, 250))]]
        return items + list(self.extra_recordings)

    @staticmethod
    def _words(seconds: int) -> str:
        minutes, secs = divmod(max(0, seconds), 60)
        return f"{minutes:02d} minutes and {secs:02d} seconds"

    def _item(self, s: SimSession) -> dict[str, Any]:
        timeline = []
        for i, page in enumerate(s.pages):
            events = list(page.events)
            if i == len(s.pages) - 1:
                events += [_smart("rage", page.start_ms + 1000)] * s.rage
                events += [_smart("dead", page.start_ms + 500)] * s.dead
            if i == 0 and s.quickback:
                events += [_smart("quickback", page.start_ms)] * s.quickback
            timeline.append(
                {
                    "url": page.url,
                    "displayTitle": page.title,
                    "start": page.start_ms,
                    "timelineEvents": events,
                }
            )
        return {
            "link": f"https://clarity.microsoft.com/player/{s.project_id}/{s.user_id}/{s.session_id}",
            "timestamp": s.started_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "totalDuration": self._words(s.duration_seconds),
            "activeDuration": self._words(s.active_seconds),
            "pagesCount": len(s.pages),
            "sessionClickCount": s.clicks,
            "timeline": timeline,
        }


def _smart(kind: str, start_ms: int) -> dict[str, Any]:
    return {"eventtype": SMART_EVENT_WORDS[kind], "text": "", "start": start_ms}


def _parse_iso(value: Any) -> datetime:
    if not isinstance(value, str):
        raise ValueError("not a string")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def create_clarity_simulator(state: ClaritySimState | None = None) -> FastAPI:
    state = state or ClaritySimState()
    app = FastAPI(title="Clarity simulator", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sim = state

    def _auth(request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if token in state.forbidden_tokens:
            return JSONResponse({"message": "Forbidden"}, status_code=403)
        if not token or token != state.token:
            return JSONResponse({"message": "Unauthorized"}, status_code=401)
        return None

    @app.get("/export-data/api/v1/project-live-insights")
    async def live_insights(request: Request) -> Response:
        with state.lock:
            state.export_requests += 1
        denied = _auth(request)
        if denied is not None:
            return denied
        q = request.query_params
        try:
            days = int(q.get("numOfDays", ""))
        except ValueError:
            days = 0
        if days not in (1, 2, 3):
            return JSONResponse({"message": "numOfDays must be 1, 2 or 3"}, status_code=400)
        dims: list[str] = []
        for i in (1, 2, 3):
            value = q.get(f"dimension{i}")
            if value is None or value == "":
                continue
            if value not in DIMENSIONS:
                return JSONResponse({"message": f"Invalid dimension: {value}"}, status_code=400)
            if value in dims:
                return JSONResponse({"message": f"Duplicate dimension: {value}"}, status_code=400)
            dims.append(value)
        day = datetime.now(UTC).date().isoformat()
        with state.lock:
            used = state.export_calls.get(day, 0)
            if used >= state.daily_quota:
                return JSONResponse({"message": "Too Many Requests"}, status_code=429)
            state.export_calls[day] = used + 1
        return JSONResponse(state.insights(days, dims))

    @app.post("/mcp/recordings/sample")
    async def recordings_sample(request: Request) -> Response:
        with state.lock:
            state.recordings_requests += 1
        denied = _auth(request)
        if denied is not None:
            return denied
        try:
            body = await request.json()
            window = body["filters"]["date"]
            start, end = _parse_iso(window["start"]), _parse_iso(window["end"])
        except (ValueError, KeyError, TypeError):
            return PlainTextResponse("Internal Server Error", status_code=500)
        count = body.get("count", 100) if isinstance(body.get("count", 100), int) else 100
        sort_by = body.get("sortBy", 0) if isinstance(body.get("sortBy", 0), int) else 0
        return JSONResponse(state.recordings(start, end, count, sort_by))

    @app.post("/collect")
    async def collect(request: Request) -> Response:
        body = await request.body()
        if body and not state.record_upload(body[:5_000_000]):
            log.debug("clarity simulator: an upload could not be read")
        return Response(status_code=204)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"ok": True, "sessions": len(state.sessions), "exportRequests": state.export_requests}

    return app


def demo_sessions_from_rows(rows: list[Any], rng_seed: int = 7) -> list[SimSession]:
    """Clarity's view of sessions the demo database holds (what the real tracker would have uploaded)."""
    out = []
    for row in rows:
        rng = random.Random(f"{rng_seed}:{row.clarity_session_id}")
        pages = []
        urls = [u for u in (row.entry_url, row.exit_url) if u]
        for i, url in enumerate(dict.fromkeys(urls)):
            pages.append(SimPage(url=url, title=urlsplit(url).path or "/", start_ms=i * 30_000))
        out.append(
            SimSession(
                project_id=row.clarity_project_id,
                user_id=row.clarity_user_id,
                session_id=row.clarity_session_id,
                started_at=row.session_start,
                duration_seconds=int(row.duration_seconds or 0),
                active_seconds=int((row.duration_seconds or 0) * rng.uniform(0.4, 0.9)),
                clicks=int(row.click_count or 0),
                pages=pages,
                rage=int(row.rage_click_count or 0),
                dead=int(row.dead_click_count or 0),
                quickback=1 if rng.random() < 0.15 else 0,
            )
        )
    return out


__all__ = ["ClaritySimState", "SimPage", "SimSession", "create_clarity_simulator", "demo_sessions_from_rows"]
