"""`supportlens serve --workers 2`: /metrics adds up every worker (PROMETHEUS_MULTIPROC_DIR set up by
`serve`), each worker's JSON log lines carry its pid and the request id, and connections opened all at
once spread over the workers (one SO_REUSEPORT socket per worker)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx2
import psutil

from tests.support.live import free_port


def _start(database_url: str, tmp_path) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    env = {
        **os.environ,
        "SUPPORTLENS_ENVIRONMENT": "test",
        "SUPPORTLENS_DATABASE_URL": database_url,
        "SUPPORTLENS_SECRET_KEY": "test-secret-key-not-for-production",
        "SUPPORTLENS_RUN_WORKER": "false",
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
    return proc, f"http://127.0.0.1:{port}", log


async def _ready(proc: subprocess.Popen, url: str, log: Path) -> None:
    async with httpx2.AsyncClient(base_url=url, timeout=5) as c:
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if (await c.get("/readyz")).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            assert asyncio.get_running_loop().time() < deadline, log.read_text()[-3000:]
            await asyncio.sleep(0.2)


def _listening_pids(proc: subprocess.Popen, port: int) -> set[int]:
    """The worker processes that listen on `port` (the supervisor also has a resource tracker)."""
    listening = set()
    for child in psutil.Process(proc.pid).children(recursive=True):
        try:
            if any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in child.net_connections()):
                listening.add(child.pid)
        except psutil.Error:
            continue
    return listening


async def _all_listening(proc: subprocess.Popen, url: str, workers: int = 2) -> set[int]:
    """Until every worker listens: one that is still starting gets no connections (SO_REUSEPORT
    spreads new connections over the sockets listening at that moment)."""
    port = int(url.rsplit(":", 1)[1])
    deadline = asyncio.get_running_loop().time() + 30
    while len(listening := _listening_pids(proc, port)) < workers:
        assert asyncio.get_running_loop().time() < deadline, f"{len(listening)} of {workers} workers listen"
        await asyncio.sleep(0.2)
    return listening


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _pids_by_request(log: Path, prefix: str) -> dict[str, int]:
    return {
        x["request_id"]: x["pid"]
        for x in (json.loads(line) for line in log.read_text().splitlines() if line.startswith("{"))
        if x.get("event") == "request" and str(x.get("request_id", "")).startswith(prefix)
    }


def _burst_while_one_worker_is_busy(url: str, busy: int, request_ids: list[str]) -> None:
    """Opens one connection per request id while worker `busy` is stopped (as if deep in a slow
    request), then sends one GET on each: every request below is exactly one connection. Through one
    shared socket the idle worker would accept the whole burst and keep those connections; with a
    socket per worker, the busy worker's share waits in its own accept queue."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conns: list[socket.socket] = []
    os.kill(busy, signal.SIGSTOP)
    try:
        conns.extend(socket.create_connection((host, int(port)), timeout=10) for _ in request_ids)
        time.sleep(0.2)  # time enough for the idle worker to accept everything it is offered
    finally:
        os.kill(busy, signal.SIGCONT)
    try:
        for conn, request_id in zip(conns, request_ids, strict=True):
            conn.sendall(
                f"GET /readyz HTTP/1.1\r\nHost: {host}\r\nX-Request-Id: {request_id}\r\n"
                "Connection: close\r\n\r\n".encode()
            )
        for conn in conns:
            answer = b"".join(iter(lambda c=conn: c.recv(65536), b""))
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    finally:
        for conn in conns:
            conn.close()


async def test_connections_opened_at_once_spread_over_the_workers(database_url, engine, tmp_path):
    # Bursts of 40 connections opened at once, as a proxy's upstream pool or a load generator opens
    # them, each while the same one of the two workers is busy.
    proc, url, log = _start(database_url, tmp_path)
    try:
        await _ready(proc, url, log)
        workers = await _all_listening(proc, url)
        busy = min(workers)
        for round_ in range(3):
            ids = [f"burst-{round_}-{i}" for i in range(40)]
            await asyncio.to_thread(_burst_while_one_worker_is_busy, url, busy, ids)
        await asyncio.sleep(0.3)
        # A worker that was restarted meanwhile would skew the count for reasons of its own: say so.
        assert _listening_pids(proc, int(url.rsplit(":", 1)[1])) == workers, log.read_text()[-3000:]
        per_worker = Counter(_pids_by_request(log, "burst-").values())
        assert sum(per_worker.values()) == 120
        # Each of the 120 connections is hashed to one of the two sockets: fewer than 36 on one worker
        # has odds of about 1 in 170,000, while a shared socket gives the busy worker none of a burst.
        assert set(per_worker) == workers and min(per_worker.values()) >= 36, per_worker
    finally:
        _stop(proc)


async def test_two_workers_share_metrics_and_log_request_ids(database_url, engine, tmp_path):
    proc, url, log = _start(database_url, tmp_path)
    try:
        await _ready(proc, url, log)

        sent = 1  # the /readyz that answered above

        async def one(i: int) -> None:
            # a new connection each time, so that both workers accept some of them
            async with httpx2.AsyncClient(base_url=url, timeout=5) as c:
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
            async with httpx2.AsyncClient(base_url=url, timeout=5) as c:
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
        _stop(proc)
