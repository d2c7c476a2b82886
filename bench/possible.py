"""Possible sessions: the cost of the app's query (`sessions.service.possible_sessions`) as links grow.

Creates a throwaway database, runs the migrations and stores, through SQLAlchemy Core:
- `--customers` customers (default 20,000) with 1 to 20 sessions each, and one busy customer with
  `--busy` sessions (default 5,000);
- one link per session: 60 % signed in (1.0), 25 % listed (0.5 to 0.99), 15 % below the threshold
  (0.05 to 0.5, two thirds of them in the possible band [0.2, 0.5));
- 2 % of the busy customer's band decided by an agent, 1 % automated sessions.
Then `VACUUM (ANALYZE)`, 200 timed calls for the busy customer and 200 for customers drawn at random,
and EXPLAIN (ANALYZE, BUFFERS) of the SQL the app sent for the busy one. Prints p50 / p95 and the plan;
exits non-zero when the plan reads session_customer_mapping with a sequential scan.

    .venv/bin/python bench/possible.py [--customers 20000] [--busy 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import event, insert, text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from bench.common import create_db, drop_db

BUSY = "busy@example.com"
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _confidence(rng: random.Random) -> tuple[float, str]:
    r = rng.random()
    if r < 0.60:
        return 1.0, "email_match"
    if r < 0.85:
        return round(rng.uniform(0.5, 0.99), 4), "device_link"
    if r < 0.90:
        return round(rng.uniform(0.05, 0.2), 4), "ip_match"
    return round(rng.uniform(0.2, 0.4999), 4), "ip_match"


def _rows(customers: int, busy: int, seed: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rng = random.Random(seed)
    sessions: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    owners = [(BUSY, busy)] + [(f"c{i}@example.com", rng.randint(1, 20)) for i in range(customers)]
    for email, count in owners:
        for n in range(count):
            sid = uuid.UUID(int=rng.getrandbits(128), version=4)
            start = NOW - timedelta(minutes=rng.randrange(0, 60 * 24 * 30))
            sessions.append(
                {
                    "id": sid,
                    "clarity_project_id": "p",
                    "clarity_user_id": f"u{len(sessions) % 50_000}",
                    "clarity_session_id": f"s{len(sessions)}",
                    "session_start": start,
                    "session_end": start + timedelta(minutes=5),
                    "automated": "bot" if rng.random() < 0.01 else None,
                }
            )
            confidence, method = _confidence(rng)
            decided = email == BUSY and 0.2 <= confidence < 0.5 and rng.random() < 0.02
            links.append(
                {
                    "session_id": sid,
                    "customer_email": email,
                    "confidence_score": 0.0 if decided else confidence,
                    "mapping_method": "manual" if decided else method,
                    "evidence": [{"method": method, "score": confidence, "reason": "bench"}],
                    "manual_decision": "unlink" if decided else None,
                    "session_start": start,
                }
            )
            del n
    return sessions, links


async def load(url: str, customers: int, busy: int) -> int:
    from supportlens.sessions.models import SessionCustomerMapping, UserSession

    sessions, links = _rows(customers, busy, seed=7)
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        for offset in range(0, len(sessions), 5_000):
            await conn.execute(insert(UserSession), sessions[offset : offset + 5_000])
        for offset in range(0, len(links), 5_000):
            await conn.execute(insert(SessionCustomerMapping), links[offset : offset + 5_000])
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM (ANALYZE)"))
    await engine.dispose()
    return len(links)


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p * (len(ordered) - 1)))]


async def measure(url: str, customers: int) -> bool:
    from supportlens.config import get_settings
    from supportlens.sessions import service

    engine = create_async_engine(url, pool_size=2)
    statements: list[tuple[str, Any]] = []

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _capture(conn: Any, cursor: Any, stmt: str, params: Any, context: Any, many: bool) -> None:
        if "session_customer_mapping" in stmt and "confidence_score <" in stmt and "band" in stmt:
            statements.append((stmt, params))

    maker = async_sessionmaker(engine, expire_on_commit=False)
    settings = get_settings()  # the recording retention the listed sessions are summarised with
    rng = random.Random(11)
    ok = True
    for label, pick in (
        ("busy customer", lambda: BUSY),
        ("random customer", lambda: f"c{rng.randrange(customers)}@example.com"),
    ):
        times: list[float] = []
        found = 0
        async with maker() as db:
            for _ in range(200):
                start = time.perf_counter()
                items, _ = await service.possible_sessions(db, pick(), settings, floor=0.2, threshold=0.5)
                times.append((time.perf_counter() - start) * 1000)
                found = max(found, len(items))
        print(
            f"{label:16} p50 {_percentile(times, 0.5):6.2f} ms  p95 {_percentile(times, 0.95):6.2f} ms  "
            f"mean {statistics.fmean(times):6.2f} ms  (up to {found} returned)"
        )
    stmt, params = next(s for s in statements if BUSY in str(s[1]))
    async with engine.connect() as conn:
        plan = [
            r[0] for r in (await conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + stmt, params)).all()
        ]
    print("\nEXPLAIN (ANALYZE, BUFFERS), busy customer:")
    print("\n".join("  " + line for line in plan))
    if any("Seq Scan on session_customer_mapping" in line for line in plan):
        print("FAIL: sequential scan of session_customer_mapping")
        ok = False
    await engine.dispose()
    return ok


async def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--busy", type=int, default=5_000)
    args = parser.parse_args()
    from supportlens.db import migrate

    url = await create_db()
    try:
        await migrate.upgrade_async(url)
        started = time.perf_counter()
        n = await load(url, args.customers, args.busy)
        print(f"loaded {n:,} sessions with one link each in {time.perf_counter() - started:.0f} s")
        return 0 if await measure(url, args.customers) else 1
    finally:
        await drop_db(url)


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
