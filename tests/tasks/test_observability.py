"""The queue is observable: /readyz reports the backlog, /metrics the lag from ingest to the link."""

from __future__ import annotations

import asyncio
import re

import pytest

from supportlens.capture import sites
from tests.support.ingest import ORIGIN, PROJECT, batch, event, headers

URL = "/api/ingest/v1/events"


def _lag_count(metrics: str) -> float:
    m = re.search(r"^supportlens_mapping_lag_seconds_count (\S+)$", metrics, re.M)
    assert m, "no mapping lag histogram in /metrics"
    return float(m.group(1))


@pytest.fixture
async def site_key(db):
    _, key = await sites.create_site(db, name="Shop", origins=[ORIGIN], clarity_project_id=PROJECT)
    return key


async def test_readyz_reports_the_backlog_until_the_worker_maps_it(
    client, site_key, sessionmaker, settings, engine
):
    from tests.support.queue import in_process_worker

    assert (await client.post(URL, json=batch(site_key, [event()]), headers=headers())).status_code == 202
    other = batch(site_key, [event()], session_id="s2")
    assert (await client.post(URL, json=other, headers=headers())).status_code == 202
    waiting = (await client.get("/readyz")).json()
    assert waiting["status"] == "ok"
    assert waiting["queue"]["todo"] == 2 and waiting["queue"]["doing"] == 0
    assert waiting["queue"]["oldestTodoSeconds"] >= 0
    before = _lag_count((await client.get("/metrics")).text)
    async with in_process_worker(settings, engine, sessionmaker) as worker:
        await worker.drained()
        # Other jobs of the same batches (issue grouping) may still be running: wait for the whole queue.
        for _ in range(100):
            queue = (await client.get("/readyz")).json()["queue"]
            if queue["todo"] == 0 and queue["doing"] == 0:
                break
            await asyncio.sleep(0.1)
    assert (await client.get("/readyz")).json()["queue"] == {
        "todo": 0,
        "doing": 0,
        "oldestTodoSeconds": 0.0,
        "failed": 0,
    }
    metrics = (await client.get("/metrics")).text
    assert _lag_count(metrics) == before + 2  # one observation per mapping job
    assert 'supportlens_mapping_lag_seconds_bucket{le="2.0"}' in metrics


async def test_the_workers_log_lines_carry_no_e_mail_or_address(client, site_key, worker, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="procrastinate")
    who = {"email": "jane@acme.io"}
    r = await client.post(URL, json=batch(site_key, [event()], customer=who), headers=headers())
    assert r.status_code == 202
    await worker.drained()
    jobs = [rec for rec in caplog.records if "map_session" in rec.getMessage()]
    assert jobs, "the worker logged no job"
    for rec in caplog.records:
        logged = rec.getMessage() + repr(getattr(rec, "job", ""))
        assert "jane@acme.io" not in logged and "127.0.0.1" not in logged
