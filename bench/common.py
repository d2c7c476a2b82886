"""Helpers the benchmark scripts share: a throwaway PostgreSQL database, a free port, and waiting
until every worker serves."""

from __future__ import annotations

import os
import socket
import time
import uuid

PG_ADMIN = os.environ.get("SUPPORTLENS_BENCH_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")


async def create_db() -> str:
    """A new, empty database on the bench server; returns its URL."""
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    name = f"supportlens_bench_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"


async def drop_db(url: str) -> None:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    name = url.rsplit("/", 1)[1]
    admin = create_async_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


async def flush_redis(url: str) -> None:
    """Empty the benchmark's own Redis database (the vendors' cached answers of an earlier run)."""
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_workers_serving(pid: int, port: int, workers: int, timeout: float = 60) -> None:
    """Until each of `workers` processes in the tree under `pid` has accepted a connection on `port`.

    `supportlens serve --workers N` runs uvicorn's supervisor: its workers share one listening socket
    and a worker accepts only once its startup is complete, so a benchmark that connects earlier
    gives every connection to the workers already up. Opens connections one by one (each answers a
    `GET /healthz` and stays open) until every worker holds one, then closes them.
    """
    import psutil

    deadline = time.monotonic() + timeout
    conns: list[socket.socket] = []
    try:
        while time.monotonic() < deadline:
            try:
                conn = socket.create_connection(("127.0.0.1", port), timeout=10)
            except OSError:
                time.sleep(0.2)  # not listening yet
                continue
            conns.append(conn)
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            conn.recv(65536)  # the answer: the connection is now held by the worker that accepted it
            holding = set()
            for proc in psutil.Process(pid).children(recursive=True):
                try:
                    sockets = proc.net_connections()
                except psutil.Error:
                    continue
                if any(c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port for c in sockets):
                    holding.add(proc.pid)
            if len(holding) >= workers:
                return
            if len(conns) > 200:  # the idle worker took them all: let go and draw again
                for conn in conns:
                    conn.close()
                conns.clear()
                time.sleep(0.2)
        raise SystemExit(f"not all of the {workers} workers accept connections on :{port}")
    finally:
        for conn in conns:
            conn.close()


def tree_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each process in the tree under `pid`, by pid."""
    import psutil

    root = psutil.Process(pid)
    seconds: dict[int, float] = {}
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        seconds[proc.pid] = times.user + times.system
    return seconds
