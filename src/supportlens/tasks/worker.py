"""`supportlens worker`: a dedicated task-queue worker process (scale mapping and schedules apart)."""

from __future__ import annotations

import contextlib

import supportlens.models  # noqa: F401  (every model, so the ORM can resolve every foreign key)
from supportlens.config import Settings
from supportlens.db.engine import make_engine, make_sessionmaker
from supportlens.logging import configure_logging
from supportlens.tasks.queue import Runtime, make_queue, run_worker


async def run_dedicated_worker(
    settings: Settings, *, concurrency: int, metrics_port: int | None = None, metrics_host: str = "127.0.0.1"
) -> None:
    """Run until SIGINT/SIGTERM (procrastinate finishes the jobs in flight, then stops).

    `metrics_port`: serve this process's Prometheus metrics (the mapping lag histogram) there."""
    configure_logging(settings.log_level, settings.log_json)
    if metrics_port is not None:
        from prometheus_client import start_http_server

        from supportlens.metrics import registry

        start_http_server(metrics_port, addr=metrics_host, registry=registry())
    engine = make_engine(settings)
    runtime = Runtime(settings=settings, engine=engine, sessionmaker=make_sessionmaker(engine))
    queue = make_queue(settings)
    try:
        async with contextlib.AsyncExitStack() as stack, queue.open_async():
            await runtime.with_clients(stack)
            await run_worker(queue, runtime, concurrency=concurrency, install_signal_handlers=True)
    finally:
        await engine.dispose()
