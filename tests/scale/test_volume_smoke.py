"""The building blocks of bench/volume.py on a tiny data set: bulk load with COPY into the daily
partitions, and the measurement through the app's own query functions with their plans."""

from __future__ import annotations

import multiprocessing as mp
import uuid

import asyncpg
from bench import volume

from tests.support import database


async def test_volume_bench_loads_partitions_and_measures_the_app_queries():
    name = f"supportlens_test_volume_{uuid.uuid4().hex[:8]}"
    url = await volume.create_database(database.admin_url(), name)
    try:
        with mp.get_context("fork").Pool(1) as pool:
            info = await volume.load(url, 400, 6, 60, 1, pool)
        conn = await asyncpg.connect(volume.raw_dsn(url))
        try:
            assert await conn.fetchval("SELECT count(*) FROM user_sessions") == 400
            assert await conn.fetchval("SELECT count(*) FROM session_events") == info["events"]
            assert info["events"] > 400
            # every event sits in a daily partition, none in the default one
            assert (
                await conn.fetchval("SELECT count(*) FROM session_event_partitions.session_events_default")
                == 0
            )
            days = await conn.fetchval("SELECT count(DISTINCT tableoid) FROM session_events")
            assert days >= volume.DAYS - 1
            orphans = await conn.fetchval(
                "SELECT count(*) FROM session_events e LEFT JOIN user_sessions s ON s.id = e.session_id "
                "WHERE s.id IS NULL"
            )
            assert orphans == 0
        finally:
            await conn.close()
        results = await volume.measure(url, samples=20)
        assert [m.name for m in results] == list(volume.TARGETS_MS)
        for m in results:
            assert len(m.timings_ms) == 20
            assert m.plans, m.name
            assert "equivalent SQL" not in m.source, f"{m.name} no longer uses the app's query code"
    finally:
        await volume.drop_database(database.admin_url(), name)
