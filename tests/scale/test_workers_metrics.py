"""`supportlens serve --workers 2`: /metrics adds up every worker (PROMETHEUS_MULTIPROC_DIR set up by
`serve`), and each worker's JSON log lines carry its pid and the request id."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys

import httpx
import pytest

from tests.support.live import free_port

pytestmark = pytest.mark.postgres_only


async def test_two_workers_share_metrics_and_log_request_ids(database_url, engine, tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "SUPPORTLENS_ENVIRONMENT": "test",
        "SUPPORTLENS_DATABASE_URL": database_url,
        "SUPPORTLENS_SECRET_KEY": "test-secret-key-not-for-production",
        "SUPPORTLENS_RUN_JOBS": "false",
        "SUPPORTLENS_LOG_JSON": "true",
        "SUPPORTLENS_LOG_LEVEL": "INFO",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("SUPPORTLENS_REDIS_URL", None)
    log = tmp_path / "serve.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "supportlens.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as c:
            deadline = asyncio.get_running_loop().time() + 30
            while True:
                assert proc.poll() is None, log.read_text()[-3000:]
                try:
                    if (await c.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert asyncio.get_running_loop().time() < deadline, log.read_text()[-3000:]
                await asyncio.sleep(0.2)

        sent = 1  # the /readyz that answered above

        async def one(i: int) -> None:
            # a new connection each time, so that both workers accept some of them
            async with httpx.AsyncClient(base_url=url, timeout=5) as c:
                r = await c.get("/readyz", headers={"X-Request-Id": f"scale-{i}"})
                assert r.status_code == 200
                assert r.headers["x-request-id"] == f"scale-{i}"

        pids: set[int] = set()
        for round_ in range(10):
            await asyncio.gather(*(one(round_ * 100 + i) for i in range(30)))
            sent += 30
            await asyncio.sleep(0.2)
            pids = {
                json.loads(line)["pid"]
                for line in log.read_text().splitlines()
                if line.startswith("{") and '"path": "/readyz"' in line
            }
            if len(pids) >= 2:
                break
        assert len(pids) == 2, "both workers should have answered some requests"

        totals = set()
        for _ in range(8):
            async with httpx.AsyncClient(base_url=url, timeout=5) as c:
                text = (await c.get("/metrics")).text
            m = re.search(
                r"supportlens_http_request_duration_seconds_count"
                r'\{method="GET",route="/readyz",status="200"\} (\S+)',
                text,
            )
            assert m, text[:2000]
            totals.add(float(m.group(1)))
        # every worker answers with the sum over both workers
        assert totals == {float(sent)}

        lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
        tagged = [
            x
            for x in lines
            if x.get("event") == "request" and str(x.get("request_id", "")).startswith("scale-")
        ]
        assert len(tagged) == sent - 1
        assert all(x["path"] == "/readyz" and x["status"] == 200 and "timestamp" in x for x in tagged)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
