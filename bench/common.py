"""Helpers the benchmark scripts share: a throwaway PostgreSQL database, a free port, and waiting
until every worker listens."""

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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_all_listening(pid: int, port: int, workers: int, timeout: float = 60) -> None:
    """Until `workers` processes of the tree under `pid` listen on `port`.

    `supportlens serve` gives each worker its own SO_REUSEPORT socket: connections opened while one
    is still starting all go to the others, and keep-alive connections stay where they landed.
    """
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        root = psutil.Process(pid)
        listening = 0
        for proc in [root, *root.children(recursive=True)]:
            try:
                sockets = proc.net_connections()
            except psutil.Error:
                continue
            listening += any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in sockets)
        if listening >= workers:
            return
        time.sleep(0.2)
    raise SystemExit(f"only some of the {workers} workers listen on :{port}")


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
