# ruff: noqa: E501, B023  (SQL text; closures used within their loop iteration)
"""Mapping accuracy, calibration and incremental cost on a labelled synthetic world.

    .venv/bin/python bench/mapping.py                      # default seed 42, through the real HTTP ingest API
    .venv/bin/python bench/mapping.py --seed 7
    .venv/bin/python bench/mapping.py --offline            # scorer only, on the facts the engine would hold
    .venv/bin/python bench/mapping.py --fit --seed 1000    # fit the scorer's weights (printed for scoring.py)
    .venv/bin/python bench/mapping.py --cost               # time to map 10,000 new events at 100k / 1M stored
    .venv/bin/python bench/mapping.py --busy-browser       # time per batch as one browser's history grows

The HTTP run creates a throwaway PostgreSQL database, runs `uvicorn --proxy-headers` on it in a
subprocess with SUPPORTLENS_FORWARDED_ALLOW_IPS=127.0.0.1, sends every session's batches to
POST /api/ingest/v1/events with the client IP in X-Forwarded-For, then reads
GET /api/clarity/sessions?customer=... per customer with an API token.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.common import create_db, drop_db, free_port  # noqa: E402
from supportlens.mapping import scoring  # noqa: E402
from supportlens.mapping.evidence import gather  # noqa: E402
from supportlens_sandbox.mapping_world import BROWSER_AGENTS, World, WorldSession, build_world, offline_facts  # noqa: E402

# Issue #20's targets, each to be met on every seed (the mean is not a target).
TARGETS = {
    "precision": 0.985,  # links listed by default (confidence >= the configured threshold)
    "deterministic_recall": 0.995,  # pairs with deterministic evidence, found as a link
    "ceiling_share": 0.98,  # recall counting possible sessions, as a share of the evidence ceiling
    "ece": 0.03,
}
# Possible sessions: a pair scored at least this (and below the threshold) is offered to an agent as a
# possible session, so it counts as found when recall is set beside the evidence ceiling.
POSSIBLE_FLOOR = 0.2
FIT_SEED = 1000
# Evidence tiers of a (session, customer) pair, from the facts the engine holds:
SIGNED_IN = "signed in"  # the session itself was signed in as the customer
DETERMINISTIC = "deterministic"  # its browser was signed in by this customer and nobody else
SHARED = "shared browser"  # its browser was signed in by this customer and others
NETWORK = "network only"  # the customer is a candidate through networks only (this IP, the browser's others)
NONE = "no evidence"
TIERS = (SIGNED_IN, DETERMINISTIC, SHARED, NETWORK, NONE)


# ---- metrics -----------------------------------------------------------------------------------------


@dataclass
class Link:
    session: str
    email: str
    confidence: float
    method: str


@dataclass
class TierFigures:
    truth: int = 0  # true pairs in the tier
    found: int = 0  # ... linked at >= the threshold
    found_possible: int = 0  # ... at >= POSSIBLE_FLOOR
    shown: int = 0  # links shown (>= the threshold) whose pair is in the tier
    shown_right: int = 0

    @property
    def recall(self) -> float:
        return self.found / self.truth if self.truth else 1.0

    @property
    def recall_possible(self) -> float:
        return self.found_possible / self.truth if self.truth else 1.0

    @property
    def precision(self) -> float:
        return self.shown_right / self.shown if self.shown else 1.0


@dataclass
class Report:
    precision: float
    recall: float
    f1: float
    shown: int
    truth: int
    per_method: dict[str, tuple[int, float]] = field(default_factory=dict)
    ece_all: float = 0.0
    ece_inferred: float = 0.0
    bins: list[tuple[float, float, float, int]] = field(default_factory=list)
    ceiling: float = 0.0
    recall_possible: float = 0.0  # true pairs linked at >= POSSIBLE_FLOOR
    tiers: dict[str, TierFigures] = field(default_factory=dict)
    # device_link links shown on the computers several people sign in on, per kind: (n, precision)
    shared_devices: dict[str, tuple[int, float]] = field(default_factory=dict)
    automated_sessions: int = 0
    automated_linked: int = 0  # stored links of any confidence to a session no person is behind

    @property
    def ceiling_share(self) -> float:
        return self.recall_possible / self.ceiling if self.ceiling else 1.0


def ece(
    points: list[tuple[float, bool]], bins: int = 10
) -> tuple[float, list[tuple[float, float, float, int]]]:
    table: list[tuple[float, float, float, int]] = []
    total = len(points)
    err = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [(c, ok) for c, ok in points if (lo <= c < hi) or (b == bins - 1 and c == 1.0)]
        if not inside:
            continue
        conf = sum(c for c, _ in inside) / len(inside)
        acc = sum(ok for _, ok in inside) / len(inside)
        err += len(inside) / total * abs(acc - conf)
        table.append((lo, conf, acc, len(inside)))
    return err, table


def evidence_tiers(world: World) -> dict[tuple[str, str], str]:
    """The tier of every (session, customer) pair with any evidence, from the facts the engine holds;
    a pair that is not here has no evidence at all."""
    out = {(s.session, s.truth): SIGNED_IN for s in world.sessions if s.signed_in and s.truth}
    for s, facts in offline_facts(world):
        for email, c in gather(facts).items():
            if c.has_device:
                out[(s.session, email)] = DETERMINISTIC if c.dev_customers == 1 else SHARED
            else:
                out[(s.session, email)] = NETWORK
    return out


def evaluate(
    world: World,
    links: list[Link],
    threshold: float,
    tier_of: dict[tuple[str, str], str] | None = None,
) -> Report:
    tier_of = evidence_tiers(world) if tier_of is None else tier_of
    truth = {s.session: s.truth for s in world.sessions}
    true_pairs = {(s.session, s.truth) for s in world.sessions if s.truth}
    shown = [ln for ln in links if ln.confidence >= threshold]
    correct = [ln for ln in shown if truth.get(ln.session) == ln.email]
    precision = len(correct) / len(shown) if shown else 1.0
    found = {(ln.session, ln.email) for ln in correct}
    recall = len(found) / len(true_pairs) if true_pairs else 1.0
    possible = {
        (ln.session, ln.email)
        for ln in links
        if ln.confidence >= POSSIBLE_FLOOR and truth.get(ln.session) == ln.email
    }
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    tiers = {t: TierFigures() for t in TIERS}
    for pair in true_pairs:
        t = tiers[tier_of.get(pair, NONE)]
        t.truth += 1
        t.found += pair in found
        t.found_possible += pair in possible
    for ln in shown:
        t = tiers[tier_of.get((ln.session, ln.email), NONE)]
        t.shown += 1
        t.shown_right += truth.get(ln.session) == ln.email
    per_method: dict[str, tuple[int, float]] = {}
    by_method: dict[str, list[Link]] = defaultdict(list)
    for ln in shown:
        by_method[ln.method].append(ln)
    for method, items in sorted(by_method.items()):
        ok = sum(truth.get(ln.session) == ln.email for ln in items)
        per_method[method] = (len(items), ok / len(items))
    kind = {s.session: s.shared for s in world.sessions if s.shared}
    shared_devices: dict[str, tuple[int, float]] = {}
    for k in sorted(set(kind.values())):
        on = [ln for ln in shown if ln.method == "device_link" and kind.get(ln.session) == k]
        ok = sum(truth.get(ln.session) == ln.email for ln in on)
        shared_devices[k] = (len(on), ok / len(on) if on else 1.0)
    points = [(ln.confidence, truth.get(ln.session) == ln.email) for ln in links]
    inferred = [
        (ln.confidence, truth.get(ln.session) == ln.email) for ln in links if ln.method != "email_match"
    ]
    ece_all, _ = ece(points)
    ece_inf, table = ece(inferred)
    no_person = {s.session for s in world.sessions if not s.carries_evidence and not s.truth}
    with_evidence = sum(1 for pair in true_pairs if pair in tier_of)
    return Report(
        automated_sessions=len(no_person),
        automated_linked=sum(1 for ln in links if ln.session in no_person),
        precision=precision,
        recall=recall,
        f1=f1,
        shown=len(shown),
        truth=len(true_pairs),
        per_method=per_method,
        ece_all=ece_all,
        ece_inferred=ece_inf,
        bins=table,
        ceiling=with_evidence / len(true_pairs) if true_pairs else 1.0,
        recall_possible=len(possible) / len(true_pairs) if true_pairs else 1.0,
        tiers=tiers,
        shared_devices=shared_devices,
    )


def evidence_ceiling(world: World) -> float:
    """Share of true (session, customer) pairs with any evidence at all (signed in, or a candidate)."""
    tier_of = evidence_tiers(world)
    true_pairs = [(s.session, s.truth) for s in world.sessions if s.truth]
    return sum(1 for pair in true_pairs if pair in tier_of) / max(1, len(true_pairs))


def print_report(title: str, world: World, rep: Report, threshold: float) -> None:
    def mark(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    shared = sum(1 for s in world.sessions if s.shared)
    print(f"\n== {title}")
    print(
        f"world: seed {world.seed}, {len(world.customers)} customers, {len(world.sessions)} sessions over "
        f"{world.days} days ({shared} on shared computers), {world.signed_in_share:.1%} signed in"
    )
    print(f"threshold {threshold:.2f}: {rep.shown} links shown, {rep.truth} true (session, customer) pairs")
    target = TARGETS["precision"]
    print(
        f"  precision of default links {rep.precision:.4f}  (target >= {target})  "
        f"{mark(rep.precision >= target)}"
    )
    print(f"  recall    {rep.recall:.4f}   F1 {rep.f1:.4f}")
    print(
        "  per evidence tier: true pairs, recall (>= threshold), recall (>= possible floor), links shown, precision"
    )
    for name, t in rep.tiers.items():
        print(
            f"    {name:15s} {t.truth:6d}  {t.recall:.4f}  {t.recall_possible:.4f}  {t.shown:6d}  "
            f"{t.precision:.4f}"
        )
    signed, det = rep.tiers[SIGNED_IN], rep.tiers[DETERMINISTIC]
    det_truth = signed.truth + det.truth
    det_recall = (signed.found + det.found) / det_truth if det_truth else 1.0
    target = TARGETS["deterministic_recall"]
    print(
        f"  deterministic pairs (signed in, or a browser only this customer signed in): {det_truth}, "
        f"recall {det_recall:.4f}  (target >= {target})  {mark(det_recall >= target)}"
    )
    net = rep.tiers[NETWORK]
    print(f"  network-only pairs: recall {net.recall:.4f}, precision of their links {net.precision:.4f}")
    target = TARGETS["ceiling_share"]
    print(
        f"  evidence ceiling (pairs with any evidence at all): {rep.ceiling:.4f}; recall counting possible "
        f"sessions (>= {POSSIBLE_FLOOR}) {rep.recall_possible:.4f} = {rep.ceiling_share:.4f} of it  "
        f"(target >= {target})  {mark(rep.ceiling_share >= target)}; links alone "
        f"{rep.recall / rep.ceiling if rep.ceiling else 1.0:.4f} of it"
    )
    if rep.automated_sessions:
        print(
            f"  automated or untouched sessions: {rep.automated_sessions}, linked at any confidence: "
            f"{rep.automated_linked}  (target 0)  {mark(rep.automated_linked == 0)}"
        )
    else:
        print("  automated sessions: none in this world (the offline scorer leaves them out; see --direct)")
    for kind, (n, p) in rep.shared_devices.items():
        print(f"  device_link on {kind} computers: {n} links shown, precision {p:.4f}")
    print("  per method (links shown, precision):")
    for method, (n, p) in rep.per_method.items():
        print(f"    {method:15s} {n:6d}  {p:.4f}")
    target = TARGETS["ece"]
    print(
        f"  ECE, ten bins, all stored links:        {rep.ece_all:.4f}  (target <= {target})  "
        f"{mark(rep.ece_all <= target)}"
    )
    print(
        f"  ECE, ten bins, inferred links only:     {rep.ece_inferred:.4f}  {mark(rep.ece_inferred <= target)}"
    )
    print("  calibration of inferred links (bin, mean confidence, share right, n):")
    for lo, conf, acc, n in rep.bins:
        print(f"    [{lo:.1f}, {lo + 0.1:.1f})  {conf:.3f}  {acc:.3f}  {n}")


# ---- offline: the scorer on the facts the engine would hold -------------------------------------------


def offline_links(world: World, weights: Any = scoring.WEIGHTS) -> list[Link]:
    links = [Link(s.session, s.truth, 1.0, "email_match") for s in world.sessions if s.signed_in and s.truth]
    for s, facts in offline_facts(world):
        for email, sc in scoring.score(gather(facts), weights).items():
            if sc.confidence >= scoring.STORE_FLOOR:
                links.append(Link(s.session, email, sc.confidence, sc.method))
    return links


def _why(tier: str, c: Any) -> str:
    """What evidence a true candidate has, in a few words (for the breakdown of missed pairs)."""
    if tier == SHARED:
        signers = "2 signers" if c.browser_signers == 2 else "3+ signers"
        home = "at its signers' home" if c.signers_home else "none of its signers signs in here elsewhere"
        return f"computer with {signers}, {home}"
    if tier == DETERMINISTIC:
        return "their own browser"
    if c.has_near:
        return "minutes from their sign-in at this address"
    if c.home_n:
        customers = f"{c.ip_customers} customers" if c.ip_customers > 1 else "1 customer"
        return f"an address they sign in at ({customers} there)" + (
            ", and the browser's other networks" if c.has_browser else ""
        )
    return "the browser's other networks only"


def ceiling_breakdown(world: World, weights: Any = scoring.WEIGHTS) -> None:
    """True pairs inside the evidence ceiling that score below the possible floor, grouped by tier and by
    what evidence the true customer has; 'tied' = another candidate scores the same (the evidence is
    shared equally), 'below' = another candidate scores higher, 'first' = the true one leads."""
    tier_of = evidence_tiers(world)
    inside = sum(1 for s in world.sessions if s.truth and (s.session, s.truth) in tier_of)
    groups: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for s, facts in offline_facts(world):
        cands = gather(facts)
        if not s.truth or s.truth not in cands:
            continue
        scored = scoring.score(cands, weights)
        mine = scored[s.truth].confidence
        if mine >= POSSIBLE_FLOOR:
            continue
        best_other = max((v.confidence for e, v in scored.items() if e != s.truth), default=0.0)
        g = groups[(tier_of[(s.session, s.truth)], _why(tier_of[(s.session, s.truth)], cands[s.truth]))]
        g[0] += 1
        g[1 if best_other < mine else 2 if best_other == mine else 3] += 1
    missed = sum(g[0] for g in groups.values())
    print(
        f"\n  pairs inside the ceiling below the possible floor ({POSSIBLE_FLOOR}): {missed} of {inside} "
        f"({missed / max(1, inside):.4f}; the target allows {1 - TARGETS['ceiling_share']:.2f})"
    )
    print(
        "    tier            evidence of the true customer                                   pairs  first  tied  below"
    )
    for (tier, why), (n, first, tied, below) in sorted(groups.items(), key=lambda kv: -kv[1][0]):
        print(f"    {tier:15s} {why:63s} {n:5d}  {first:5d}  {tied:4d}  {below:5d}")


def fit(seed: int, customers: int, free: list[str] | None = None) -> list[float]:
    world = build_world(seed, customers)
    examples: list[tuple[list[list[float]], int | None]] = []
    for s, facts in offline_facts(world):
        cands = gather(facts)
        if not cands:
            continue
        emails = sorted(cands)
        truth = emails.index(s.truth) if s.truth in cands else None
        examples.append(([scoring.features(cands[e]) for e in emails], truth))
    t = time.perf_counter()
    moving = None if free is None else [scoring.FEATURES.index(name) for name in free]
    weights = scoring.fit(examples, start=scoring.WEIGHTS, free=moving)
    print(
        f"fitted on seed {seed}: {len(examples)} anonymous sessions with candidates, "
        f"{time.perf_counter() - t:.1f}s"
    )
    print("WEIGHTS: tuple[float, ...] = (")
    for name, w in zip(scoring.FEATURES, weights, strict=True):
        print(f"    {w:.4f},  # {name}")
    print(")")
    return weights


# ---- the real path: uvicorn + PostgreSQL + HTTP -----------------------------------------------------------


def _env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "SUPPORTLENS_DATABASE_URL": url,
            "SUPPORTLENS_ENVIRONMENT": "test",
            "SUPPORTLENS_SECRET_KEY": "bench-secret-key",
            "SUPPORTLENS_RUN_WORKER": "true",  # the server maps, as `supportlens serve` does
            "SUPPORTLENS_LOG_LEVEL": "WARNING",
            "SUPPORTLENS_FORWARDED_ALLOW_IPS": "127.0.0.1",
            "SUPPORTLENS_INGEST_MAX_EVENT_AGE_DAYS": "40",
            "SUPPORTLENS_INGEST_RATE_LIMIT_PER_SITE": "100000/second",
            "SUPPORTLENS_INGEST_RATE_LIMIT_PER_IP": "100000/second",
        }
    )
    return env


async def _prepare(url: str) -> tuple[str, str]:
    """Migrate, create the site (public key) and an agent API token, in-process like the CLI does."""
    os.environ.update({k: v for k, v in _env(url).items() if k.startswith("SUPPORTLENS_")})
    from supportlens.auth import service as auth
    from supportlens.capture import sites
    from supportlens.config import get_settings
    from supportlens.db import migrate
    from supportlens.db.engine import make_engine, make_sessionmaker

    get_settings.cache_clear()
    await migrate.upgrade_async(url)
    settings = get_settings()
    engine = make_engine(settings)
    async with make_sessionmaker(engine)() as db:
        _, key = await sites.create_site(
            db, name="Bench shop", origins=["https://shop.example"], clarity_project_id="p1"
        )
        agent = await auth.create_agent(
            db, email="bench@support.example", name="Bench", role="agent", password=None
        )
        token = await auth.create_api_token(db, agent, "bench")
        await db.commit()
    await engine.dispose()
    return key, token


def _start_server(url: str, port: int) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable, "-m", "uvicorn", "supportlens.app:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--proxy-headers",
        "--forwarded-allow-ips", "127.0.0.1", "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, env=_env(url), cwd=str(ROOT))
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError("uvicorn did not start")


def batches_of(s: WorldSession, site_key: str) -> list[dict[str, Any]]:
    out = []
    span = (s.end - s.start) / max(1, s.batches)
    for i in range(s.batches):
        t0 = s.start + span * i
        ts = [t0 + (span * k) / 3 for k in range(3)] if i < s.batches - 1 else [t0, t0 + span / 2, s.end]
        customer = None
        named = s.signs_in_as or s.truth
        if s.login_batch is not None and i >= s.login_batch and named:
            customer = {"email": named, "id": "cus_" + named.split("@")[0], "name": None}
        empty = s.automated == "script" or (s.automated is None and s.interacted is False)
        out.append(
            {
                "siteKey": site_key,
                "clarity": {"projectId": "p1", "userId": s.device, "sessionId": s.session, "pageNum": i + 1},
                "customer": customer,
                "page": {"url": f"https://shop.example/p{i}", "title": "Shop"},
                **(
                    {"automation": {"webdriver": s.webdriver, "interacted": s.interacted}}
                    if s.interacted is not None
                    else {}
                ),
                "events": []
                if empty
                else [
                    {
                        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{s.session}/{i}/{k}")),
                        "type": "navigation" if k == 0 else "click",
                        "ts": t.astimezone(UTC).isoformat().replace("+00:00", "Z"),
                        "url": f"https://shop.example/p{i}",
                    }
                    for k, t in enumerate(ts)
                ],
            }
        )
    return out


async def _send_world(
    base: str, world: World, site_key: str, *, shuffle_seed: int | None = None, concurrency: int = 6
) -> float:
    import random

    import httpx2

    items: list[tuple[datetime, WorldSession, dict[str, Any]]] = []
    for s in world.sessions:
        span = (s.end - s.start) / max(1, s.batches)
        for i, b in enumerate(batches_of(s, site_key)):
            items.append((s.start + span * (i + 1), s, b))
    items.sort(key=lambda x: (x[0], x[1].session))
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(items)
    t = time.perf_counter()
    done = 0
    retried = 0
    lanes: dict[int, list[tuple[WorldSession, dict[str, Any]]]] = defaultdict(list)
    # Batches of one browser stay in order on one lane; lanes run concurrently like real visitors do.
    for _, s, body in items:
        lanes[zlib.crc32(s.device.encode()) % concurrency].append((s, body))

    async def lane(client: httpx2.AsyncClient, work: list[tuple[WorldSession, dict[str, Any]]]) -> None:
        nonlocal done, retried
        for s, body in work:
            for attempt in range(8):
                try:
                    r = await client.post(
                        "/api/ingest/v1/events",
                        json=body,
                        headers={
                            "Origin": "https://shop.example",
                            "X-Forwarded-For": s.ip,
                            "User-Agent": s.user_agent or BROWSER_AGENTS[s.device_kind],
                        },
                    )
                except httpx2.TransportError:
                    r = None
                if r is not None and r.status_code == 202:
                    break
                if r is not None and r.status_code < 500 and r.status_code != 429:
                    raise RuntimeError(f"ingest answered {r.status_code}: {r.text[:300]}")
                retried += 1  # a retry is what the browser SDK does; event ids make it idempotent
                await asyncio.sleep(0.05 * (attempt + 1))
            else:
                raise RuntimeError("ingest kept failing")
            done += 1
            if done % 5000 == 0:
                print(f"  sent {done}/{len(items)} batches ({time.perf_counter() - t:.0f}s)", flush=True)

    async with httpx2.AsyncClient(base_url=base, timeout=60) as client:
        await asyncio.gather(*(lane(client, work) for work in lanes.values()))
    if retried:
        print(f"  {retried} batches were retried after a 5xx (concurrent transactions)")
    return time.perf_counter() - t


async def _read_links(base: str, world: World, token: str, min_confidence: float | None) -> list[Link]:
    import httpx2

    links: list[Link] = []
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(base_url=base, timeout=60, headers=headers) as client:
        for email in world.customers:
            params: dict[str, Any] = {"customer": email, "limit": 100}
            if min_confidence is not None:
                params["min_confidence"] = min_confidence
            while True:
                r = await client.get("/api/clarity/sessions", params=params)
                r.raise_for_status()
                body = r.json()
                items = body["items"] if isinstance(body, dict) else body
                for it in items:
                    m = it.get("mapping") or {}
                    links.append(
                        Link(
                            it["claritySessionId"],
                            email,
                            float(m.get("confidence") or 0),
                            m.get("method") or "",
                        )
                    )
                cursor = body.get("nextCursor") if isinstance(body, dict) else None
                if not cursor:
                    break
                params["before"] = cursor
    return links


async def _deadlocks(url: str) -> int:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    eng = create_async_engine(url)
    async with eng.connect() as conn:
        n = await conn.scalar(
            text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        )
    await eng.dispose()
    return int(n or 0)


async def _drained(url: str) -> float:
    """Wait for the server's mapping worker to empty the queue: links are read only once all are made."""
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from supportlens.tasks.status import wait_until_drained

    eng = create_async_engine(url)
    try:
        return await wait_until_drained(async_sessionmaker(eng), within=3600)
    finally:
        await eng.dispose()


async def run_http(seed: int, customers: int, keep: bool = False, *, automated: bool = True) -> None:
    world = build_world(seed, customers, automated=automated)
    url = await create_db()
    proc = None
    try:
        site_key, token = await _prepare(url)
        port = free_port()
        proc = _start_server(url, port)
        base = f"http://127.0.0.1:{port}"
        batches = sum(s.batches for s in world.sessions)
        print(
            f"seed {seed}: sending {batches} batches of {len(world.sessions)} sessions to {base}", flush=True
        )
        took = await _send_world(base, world, site_key)
        print(f"  ingest: {took:.1f}s ({batches / took:.0f} batches/s)")
        waited = await _drained(url)
        print(f"  mapping queue drained {waited:.1f}s after the last batch was acknowledged")
        print(f"  deadlocks PostgreSQL broke: {await _deadlocks(url)}")
        from supportlens.config import get_settings

        threshold = get_settings().mapping_min_confidence
        shown = await _read_links(base, world, token, None)
        stored = await _read_links(base, world, token, 0.0)
        tier_of = evidence_tiers(world)
        rep = evaluate(world, stored, threshold, tier_of)
        shown_rep = evaluate(world, shown, threshold, tier_of)
        rep.precision, rep.recall, rep.f1, rep.shown = (
            shown_rep.precision,
            shown_rep.recall,
            shown_rep.f1,
            shown_rep.shown,
        )
        rep.per_method = shown_rep.per_method
        print_report(f"HTTP ingest -> sessions API, seed {seed}", world, rep, threshold)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        if not keep:
            await drop_db(url)


async def run_direct(seed: int, customers: int, *, automated: bool = True) -> None:
    """The same world through capture's ingest service in-process (no HTTP, no uvicorn), read back
    through the sessions service: for a quick run on a busy machine."""
    import json

    url = await create_db()
    try:
        await _prepare(url)
        from supportlens.capture.ingest import ingest_batch
        from supportlens.capture.schemas import IngestBatch
        from supportlens.config import get_settings
        from supportlens.db.engine import make_engine, make_sessionmaker
        from supportlens.sessions import service

        world = build_world(seed, customers, automated=automated)
        settings = get_settings()
        engine = make_engine(settings)
        sm = make_sessionmaker(engine)
        items: list[tuple[datetime, WorldSession, dict[str, Any]]] = []
        for s in world.sessions:
            span = (s.end - s.start) / max(1, s.batches)
            for i, b in enumerate(batches_of(s, "pk_bench_in_process")):
                items.append((s.start + span * (i + 1), s, b))
        items.sort(key=lambda x: (x[0], x[1].session))
        print(
            f"seed {seed}: ingesting {len(items)} batches of {len(world.sessions)} sessions in-process",
            flush=True,
        )
        from supportlens.tasks.queue import Runtime, running_worker
        from supportlens.tasks.status import wait_until_drained

        t = time.perf_counter()
        # The mapping worker runs beside ingest, as `supportlens serve` runs it.
        async with running_worker(Runtime(settings, engine, sm)):
            async with sm() as db:
                for n, (_, s, body) in enumerate(items):
                    batch = IngestBatch.model_validate_json(json.dumps(body))
                    agent = s.user_agent or BROWSER_AGENTS[s.device_kind]  # as the HTTP run sends it
                    await ingest_batch(db, None, batch, client_ip=s.ip, user_agent=agent)
                    if n and n % 5000 == 0:
                        print(f"  {n}/{len(items)} ({time.perf_counter() - t:.0f}s)", flush=True)
            ingested = time.perf_counter() - t
            print(f"  ingest: {ingested:.1f}s ({len(items) / ingested:.0f} batches/s)", flush=True)
            waited = await wait_until_drained(sm, within=3600)
        took = time.perf_counter() - t
        print(f"  mapping queue drained {waited:.1f}s after the last batch; ingest + mapping {took:.1f}s")

        async def read(min_confidence: float | None) -> list[Link]:
            out: list[Link] = []
            async with sm() as db:
                for email in world.customers:
                    before = None
                    while True:
                        page, before = await service.sessions_page(
                            db, email, settings, limit=100, before=before, min_confidence=min_confidence
                        )
                        for it in page:
                            m = it.mapping
                            out.append(
                                Link(it.clarity_session_id, email, float(m.confidence or 0), m.method or "")
                            )
                        if not before:
                            break
            return out

        threshold = settings.mapping_min_confidence
        tier_of = evidence_tiers(world)
        shown_rep = evaluate(world, await read(None), threshold, tier_of)
        rep = evaluate(world, await read(0.0), threshold, tier_of)
        rep.precision, rep.recall, rep.f1, rep.shown = (
            shown_rep.precision,
            shown_rep.recall,
            shown_rep.f1,
            shown_rep.shown,
        )
        rep.per_method = shown_rep.per_method
        print_report(f"in-process ingest service -> sessions service, seed {seed}", world, rep, threshold)
        await engine.dispose()
    finally:
        await drop_db(url)


PRELOAD_SQL = """
INSERT INTO user_sessions (id, clarity_project_id, clarity_user_id, clarity_session_id, customer_email,
    session_start, session_end, duration_seconds, page_views, event_count, click_count, error_count,
    rage_click_count, dead_click_count, max_scroll_depth, device_type, client_ip, clarity_confirmed,
    clarity_data, created_at, updated_at {extra_cols})
SELECT gen_random_uuid(), 'p1', 'pre-dev-' || (i / 3), 'pre-s-' || i,
    CASE WHEN i % 5 < 2 THEN 'pre-' || (i / 9) || '@example.com' END,
    now() - make_interval(mins => (i % 40000)), now() - make_interval(mins => (i % 40000)) + interval '8 minutes',
    480, 3, 10, 7, 0, 0, 0, 0, 'desktop',
    CASE WHEN i % 10 = 0 THEN '100.64.0.' || (i % 40) ELSE '24.' || (i / 12 % 250) || '.' || (i / 3000) || '.9' END,
    false, '{{}}', now(), now() {extra_vals}
FROM generate_series(:lo, :hi - 1) AS i
"""


async def run_cost() -> None:
    """Time to map 10,000 new events with 100k and with 1M events already stored."""
    import json

    from sqlalchemy import text

    for stored_events in (100_000, 1_000_000):
        url = await create_db()
        try:
            await _prepare(url)
            from supportlens.capture.ingest import ingest_batch
            from supportlens.capture.schemas import IngestBatch
            from supportlens.config import get_settings
            from supportlens.db.engine import make_engine, make_sessionmaker
            from supportlens.mapping import engine as mapping_engine
            from supportlens.mapping.facts import FactKeys

            settings = get_settings()
            keys = FactKeys.of(settings)
            eng = make_engine(settings)
            sm = make_sessionmaker(eng)
            sessions = stored_events // 10
            t = time.perf_counter()
            async with eng.begin() as conn:
                cols = {
                    r[0]
                    for r in await conn.execute(
                        text(
                            "SELECT column_name FROM information_schema.columns WHERE table_name = 'user_sessions' "
                            "AND is_nullable = 'NO' AND column_default IS NULL"
                        )
                    )
                }
                known = set(re.findall(r"\w+", PRELOAD_SQL.split("SELECT")[0]))
                extra = sorted(c for c in cols if c not in known and c != "id")
                sql = PRELOAD_SQL.format(
                    extra_cols="".join(", " + c for c in extra), extra_vals="".join(", 0" for _ in extra)
                )
                for lo in range(0, sessions, 50_000):
                    await conn.execute(text(sql), {"lo": lo, "hi": min(sessions, lo + 50_000)})
                await conn.execute(
                    text(
                        "INSERT INTO session_events (id, session_id, event_type, event_data, timestamp) "
                        "SELECT gen_random_uuid(), s.id, 'click', '{}', s.session_start + make_interval(secs => k * 40) "
                        "FROM user_sessions s, generate_series(0, 9) AS k"
                    )
                )
                # The engine's own indexes, as if these sessions had been mapped when they arrived.
                ips = [r[0] for r in await conn.execute(text("SELECT DISTINCT client_ip FROM user_sessions"))]
                await conn.execute(text("CREATE TEMP TABLE ipk (ip text, k text)"))
                await conn.execute(
                    text("INSERT INTO ipk VALUES (:ip, :k)"),
                    [{"ip": ip, "k": keys.ip(ip)} for ip in ips],
                )
                await conn.execute(
                    text(
                        "INSERT INTO mapping_identities (session_id, customer_email, clarity_user_id, ip_key, "
                        "session_start, session_end) SELECT s.id, s.customer_email, s.clarity_user_id, ipk.k, "
                        "s.session_start, s.session_end FROM user_sessions s JOIN ipk ON ipk.ip = s.client_ip "
                        "WHERE s.customer_email IS NOT NULL"
                    )
                )
                await conn.execute(
                    text(
                        "INSERT INTO session_customer_mapping (id, session_id, customer_email, confidence_score, "
                        "mapping_method, evidence, created_at, updated_at) SELECT gen_random_uuid(), session_id, "
                        "customer_email, 1.0, 'email_match', '[]', now(), now() FROM mapping_identities"
                    )
                )
                await conn.execute(
                    text(
                        "INSERT INTO mapping_ip_devices SELECT DISTINCT ipk.k, s.clarity_user_id FROM user_sessions s "
                        "JOIN ipk ON ipk.ip = s.client_ip"
                    )
                )
                await conn.execute(
                    text(
                        "INSERT INTO mapping_ip_customers SELECT DISTINCT ip_key, md5(customer_email) "
                        "FROM mapping_identities"
                    )
                )
                await conn.execute(text("ANALYZE"))
                n_events = await conn.scalar(text("SELECT count(*) FROM session_events"))
            print(
                f"\npre-loaded {n_events} events in {sessions} sessions ({time.perf_counter() - t:.0f}s)",
                flush=True,
            )

            # 10,000 new events: 1,000 batches of 10, half on browsers and addresses already stored.
            world = build_world(77, 400)
            picked = [s for s in world.sessions][:1000]
            spent = [0.0]
            counters = {"statements": 0, "rescored": 0, "active": 0}
            original = mapping_engine.on_ingest
            original_rescore = mapping_engine.rescore_sessions

            from sqlalchemy import event

            def _count_statement(*_: Any) -> None:
                if counters["active"]:
                    counters["statements"] += 1

            event.listen(eng.sync_engine, "before_cursor_execute", _count_statement)

            async def timed(
                *args: Any, _orig: Any = original, _spent: list[float] = spent, **kw: Any
            ) -> None:
                t0 = time.perf_counter()
                counters["active"] = 1
                try:
                    await _orig(*args, **kw)
                finally:
                    counters["active"] = 0
                _spent[0] += time.perf_counter() - t0

            async def counted(
                db: Any, sessions: Any, ctx: Any = None, _orig: Any = original_rescore, **kw: Any
            ) -> None:
                counters["rescored"] += len(sessions)
                await _orig(db, sessions, ctx, **kw)

            mapping_engine.rescore_sessions = counted
            mapping_engine.on_ingest = timed
            bodies = []
            for n, s in enumerate(picked):
                body = batches_of(s, "pk_bench_in_process")[-1]
                body["events"] = [
                    {**body["events"][0], "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{s.session}/{k}"))}
                    for k in range(10)
                ]
                ip = s.ip
                if n % 2:
                    body["clarity"]["userId"] = f"pre-dev-{(n * 7919) % (sessions // 3)}"
                    ip = f"24.{n % 250}.{n % max(1, sessions // 3000)}.9"
                # With the browser's own User-Agent: a batch without one is a script's, never mapped.
                bodies.append((IngestBatch.model_validate_json(json.dumps(body)), ip, s.user_agent))
            from supportlens.tasks.queue import Runtime, run_until_empty

            t = time.perf_counter()
            async with sm() as db:
                for batch, ip, agent in bodies:
                    await ingest_batch(db, None, batch, client_ip=ip, user_agent=agent)
            ingest_took = time.perf_counter() - t
            t = time.perf_counter()
            await run_until_empty(Runtime(settings, eng, sm), queues=("mapping",))
            total = time.perf_counter() - t
            mapping_engine.on_ingest = original
            mapping_engine.rescore_sessions = original_rescore
            events = sum(len(b.events) for b, _, _ in bodies)
            print(
                f"{stored_events:>9,} events stored: {events} new events in {len(bodies)} batches: "
                f"ingest {ingest_took:.2f}s; the worker's jobs {total:.2f}s, of which mapping {spent[0]:.2f}s "
                f"({spent[0] / len(bodies) * 1000:.1f} ms per batch); per batch the engine ran "
                f"{counters['statements'] / len(bodies):.1f} SQL statements and re-scored "
                f"{counters['rescored'] / len(bodies):.2f} sessions",
                flush=True,
            )
            await eng.dispose()
        finally:
            await drop_db(url)


async def run_busy_browser(sizes: tuple[int, ...] = (100, 300, 480, 1000, 3000), probe: int = 20) -> None:
    """Time per batch on one browser as its history grows (a kiosk, or a customer's laptop over a month).

    Every other session signs in as the same customer, so each sign-in changes the device evidence of all
    the browser's sessions: the engine must re-score them all, and the question is what each costs. Past
    MAX_BROWSER_SESSIONS the browser is no one person's and carries no evidence: the cost stops growing.
    """
    import json

    url = await create_db()
    try:
        site_key, _ = await _prepare(url)
        from sqlalchemy import text

        from supportlens.capture.ingest import ingest_batch
        from supportlens.capture.schemas import IngestBatch
        from supportlens.config import get_settings
        from supportlens.db.engine import make_engine, make_sessionmaker
        from supportlens.mapping.evidence import MAX_BROWSER_SESSIONS
        from supportlens.mapping.facts import FactKeys

        settings = get_settings()
        keys = FactKeys.of(settings)
        eng = make_engine(settings)
        sm = make_sessionmaker(eng)
        total = sizes[-1] + probe * len(sizes)
        first = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=40 * total + 60)

        def batch(n: int) -> IngestBatch:
            start = first + timedelta(minutes=40 * n)
            s = WorldSession(
                device="kiosk-1", session=f"kiosk-s{n}", ip="24.1.2.3", start=start,
                end=start + timedelta(minutes=5), truth="owner@example.com", batches=1,
                login_batch=0 if n % 2 == 0 else None, device_kind="desktop",
            )  # fmt: skip
            return IngestBatch.model_validate_json(json.dumps(batches_of(s, site_key)[0]))

        from supportlens.tasks.mapping import map_session

        async def ingest_and_map(db: Any, n: int) -> None:
            """One batch, then what the mapping worker does with its job (the job itself stays queued)."""
            b = batch(n)
            await ingest_batch(db, None, b, client_ip="24.1.2.3", user_agent=None)
            session_id = await db.scalar(
                text("SELECT id FROM user_sessions WHERE clarity_session_id = :s"),
                {"s": b.clarity.session_id},
            )
            email = b.customer.email if b.customer is not None else None
            await map_session(sm, session_id=str(session_id), email=email, client_ip="24.1.2.3", keys=keys)

        sent = 0
        async with sm() as db:
            for size in sizes:
                while sent < size:
                    await ingest_and_map(db, sent)
                    sent += 1
                t = time.perf_counter()
                for _ in range(probe):
                    await ingest_and_map(db, sent)
                    sent += 1
                per_batch = (time.perf_counter() - t) / probe * 1000
                past = "  (past the cap: no evidence)" if size > MAX_BROWSER_SESSIONS else ""
                print(
                    f"one browser with {size:5d} sessions stored: {per_batch:7.1f} ms per batch "
                    f"({per_batch / size * 100:.1f} ms per 100 stored sessions of that browser){past}",
                    flush=True,
                )
        await eng.dispose()
    finally:
        await drop_db(url)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--offline", action="store_true")
    parser.add_argument("--fit", action="store_true")
    parser.add_argument(
        "--free", help="with --fit: fit only these weights (comma-separated names), holding the others"
    )
    parser.add_argument("--cost", action="store_true")
    parser.add_argument(
        "--busy-browser", action="store_true", help="cost per batch as one browser's history grows"
    )
    parser.add_argument("--direct", action="store_true", help="in-process ingest service instead of HTTP")
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument(
        "--no-automated",
        action="store_true",
        help="leave the automated traffic (monitors, scripts, bursts, empty sessions) out of the HTTP and --direct runs",
    )
    args = parser.parse_args()
    # Clean up (server, throwaway database) on SIGTERM too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.fit:
        fit(args.seed, args.customers, args.free.split(",") if args.free else None)
        return
    if args.offline:
        world = build_world(args.seed, args.customers)
        rep = evaluate(world, offline_links(world), args.threshold)
        print_report(f"offline scorer, seed {args.seed}", world, rep, args.threshold)
        ceiling_breakdown(world)
        return
    if args.cost:
        asyncio.run(run_cost())
        return
    if args.busy_browser:
        asyncio.run(run_busy_browser())
        return
    if args.direct:
        asyncio.run(run_direct(args.seed, args.customers, automated=not args.no_automated))
        return
    asyncio.run(run_http(args.seed, args.customers, automated=not args.no_automated))


if __name__ == "__main__":
    main()
