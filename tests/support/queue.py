"""The task queue in tests: a worker running in the test's event loop, and waiting for it to drain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from supportlens.tasks.queue import Runtime, running_worker
from supportlens.tasks.status import wait_until_drained


@dataclass
class Worker:
    sessionmaker: Any

    async def drained(self, within: float = 60.0) -> None:
        """Wait until every stored batch is mapped (no mapping job waits or runs)."""
        await wait_until_drained(self.sessionmaker, within=within)


@asynccontextmanager
async def in_process_worker(settings: Any, engine: Any, sessionmaker: Any) -> AsyncIterator[Worker]:
    async with AsyncExitStack() as stack:
        runtime = Runtime(settings=settings, engine=engine, sessionmaker=sessionmaker)
        await runtime.with_clients(stack)
        async with running_worker(runtime, concurrency=2):
            yield Worker(sessionmaker)


async def run_periodic_now(runtime: Runtime, names: list[str]) -> None:
    """Make these periodic tasks due now, as procrastinate's deferrer does, and run them with a worker."""
    import time

    from supportlens.tasks.queue import WORKER_NAME, make_queue

    queue = make_queue(runtime.settings)
    async with queue.open_async():
        due = int(time.time())
        for name in names:
            task = queue.tasks[name]
            job = task.configure(task_kwargs={"timestamp": due}).job
            await queue.job_manager.defer_periodic_job(job=job, periodic_id="", defer_timestamp=due)
        # Only these runs: the worker's own deferrer would also enqueue whatever the real schedule has
        # due within its catch-up window (a Clarity pull at 16:05 UTC made a test run it twice).
        queue.periodic_registry.periodic_tasks.clear()
        await queue.run_worker_async(
            queues=["periodic"],
            wait=False,
            name=WORKER_NAME,
            delete_jobs="successful",
            additional_context={"runtime": runtime},
            install_signal_handlers=False,
        )
