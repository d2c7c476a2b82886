"""The stand-in receiver of `bench/dwolla_webhooks.py`: verifies each Dwolla webhook and counts event ids.

Not the product's endpoint (that needs the task queue): it only shows what the sender, loopback HTTP and
`verify_webhook` cost, and lets the benchmark check that every event arrived once.
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request, Response

from supportlens.integrations.dwolla.webhooks import SIGNATURE_HEADER, WebhookRejected, verify_webhook

SECRET = os.environ.get("BENCH_WEBHOOK_SECRET", "")
app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
seen: Counter[str] = Counter()
rejected: Counter[str] = Counter()


@app.post("/dwolla")
async def receive(request: Request) -> Response:
    try:
        event = verify_webhook(
            await request.body(), request.headers.get(SIGNATURE_HEADER), [SECRET], now=datetime.now(UTC)
        )
    except WebhookRejected as exc:
        rejected[exc.reason] += 1
        return Response(status_code=exc.status)
    seen[event.id] += 1
    return Response(status_code=200)


@app.get("/stats")
async def stats() -> dict[str, Any]:
    return {
        "unique": len(seen),
        "repeats": sum(n - 1 for n in seen.values()),
        "rejected": sum(rejected.values()),
        "reasons": dict(rejected),
    }
