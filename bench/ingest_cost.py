"""CPU of the ingest store path per 1,000 events, in one process: the app's and its PostgreSQL backend's.

Stores the ingest benchmark's batches (bench/ingest.py's Sender: 50 events, 3 in 8 of them errors,
rage or dead clicks) one after the other through `ingest_batch`, already validated, on one connection,
and reads the CPU time of this process (`time.process_time`) and of its PostgreSQL backend (psutil)
around each round. Variants alternate round by round, so a busy machine slows them alike and their
ratio holds:

- `as-is`: the code as it is;
- `no-grouping`: the same batches with no event of an issue type marked for grouping (what the store
  costs without issue grouping's share);
- `sqlalchemy`: the same statement run through the session's `execute` (SQLAlchemy's execution
  machinery) instead of straight on the asyncpg connection, as the store did before.

It also counts the statements sent per batch. No HTTP: the request's own cost (server, routing,
JSON, validation) is bench/ingest.py's.

    .venv/bin/python bench/ingest_cost.py [--rounds 6] [--batches 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.common import create_db, drop_db  # noqa: E402
from bench.ingest import ORIGIN, Sender, prepare  # noqa: E402

VARIANTS = ("as-is", "no-grouping", "sqlalchemy")


def _backend_cpu(pid: int) -> float:
    import psutil

    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=6, help="rounds of each variant, alternating")
    ap.add_argument("--batches", type=int, default=200, help="batches per round")
    args = ap.parse_args()

    from sqlalchemy import event, text

    from supportlens.capture import ingest, sites
    from supportlens.capture.schemas import IngestBatch
    from supportlens.config import get_settings
    from supportlens.db.engine import make_engine, make_sessionmaker
    from supportlens.tasks import grouping

    url = await create_db()
    try:
        key = await prepare(url)
        settings = get_settings()
        settings.database_pool_size = 1
        engine = make_engine(settings)
        statements = 0

        # Statements through SQLAlchemy (its cursor event) and straight on the asyncpg connection (its
        # query logger, which does not see the prepared statements SQLAlchemy runs): each counted once.
        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def _count_sqlalchemy(*_: Any) -> None:
            nonlocal statements
            statements += 1

        def _count(query: Any) -> None:
            nonlocal statements
            if not query.query.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
                statements += 1

        sessionmaker = make_sessionmaker(engine)
        async with sessionmaker() as db:
            site = await sites.SiteCache(60).by_key(db, key)
            backend = int((await db.execute(text("SELECT pg_backend_pid()"))).scalar_one())
            raw = await (await db.connection()).get_raw_connection()
            assert raw.driver_connection is not None
            raw.driver_connection.add_query_logger(_count)
            await db.commit()
        assert site is not None
        senders = [Sender(n, key, 50) for n in range(20)]
        grouped = grouping.GROUPED_TYPES
        driver_store = ingest._store

        async def sqlalchemy_store(db: Any, params: dict[str, Any]) -> Any:
            session_id, new_ids = (await db.execute(ingest._STORE, params)).one()
            return session_id, new_ids

        totals = {v: [0.0, 0.0, 0, 0] for v in VARIANTS}  # app s, PG s, events, statements
        for r in range(args.rounds + 1):  # round 0 warms up and is not counted
            for variant in VARIANTS:
                batches = [
                    IngestBatch.model_validate_json(senders[i % 20].body()) for i in range(args.batches)
                ]
                narrowed = frozenset() if variant == "no-grouping" else grouped
                ingest._store = sqlalchemy_store if variant == "sqlalchemy" else driver_store  # type: ignore[assignment]
                grouping.GROUPED_TYPES = narrowed  # type: ignore[misc]
                if hasattr(ingest, "GROUPED_TYPES"):  # the commits before the store took it from grouping
                    ingest.GROUPED_TYPES = narrowed
                n0, app0, pg0 = statements, time.process_time(), _backend_cpu(backend)
                for b in batches:
                    async with sessionmaker() as db:
                        await ingest.ingest_batch(db, site, b, client_ip="203.0.113.9", user_agent=None)
                app1, pg1 = time.process_time(), _backend_cpu(backend)
                if r:
                    t = totals[variant]
                    t[0] += app1 - app0
                    t[1] += pg1 - pg0
                    t[2] += sum(len(b.events) for b in batches)
                    t[3] += statements - n0
        grouping.GROUPED_TYPES = grouped  # type: ignore[misc]
        ingest._store = driver_store  # type: ignore[assignment]
        await engine.dispose()
    finally:
        await drop_db(url)

    print(
        f"store path only (no HTTP), {args.rounds} rounds x {args.batches} batches of 50 events, alternating"
    )
    base = totals["no-grouping"]
    base_ms = (base[0] + base[1]) / base[2] * 1e6
    for variant in VARIANTS:
        app_s, pg_s, events, stmts = totals[variant]
        per_k = (app_s + pg_s) / events * 1e6
        print(
            f"{variant:12} app {app_s / events * 1e6:6.1f} + PostgreSQL {pg_s / events * 1e6:6.1f} "
            f"= {per_k:6.1f} ms per 1,000 events ({per_k / base_ms:.2f}x no-grouping); "
            f"{stmts / (events / 50):.1f} statements per batch"
        )
    print(f"load average   {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores  (origin {ORIGIN})")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
