"""bench/ingest.py's batches are valid Ingest v1 batches that the endpoint accepts."""

from __future__ import annotations

from bench.ingest import ORIGIN, Sender, pct

from supportlens.capture import sites
from supportlens.capture.schemas import IngestBatch


async def test_bench_batches_are_accepted(client, db):
    _, key = await sites.create_site(db, name="Bench", origins=[ORIGIN], clarity_project_id="bench")
    s = Sender(2, key, 50)
    body = s.body()
    assert len(IngestBatch.model_validate_json(body).events) == 50
    r = await client.post(
        "/api/ingest/v1/events", content=body, headers={"Content-Type": "text/plain", "Origin": ORIGIN}
    )
    assert r.status_code == 202 and r.json() == {"accepted": 50, "duplicates": 0}
    assert pct([1.0, 2.0, 3.0, 100.0], 50) in (2.0, 3.0) and pct([5.0], 99) == 5.0
