"""Worker processes: a due periodic run happens once across two of them, and a worker killed in the middle
of a mapping job leaves nothing unmapped or mapped twice once a worker starts again."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from supportlens.mapping import engine as mapping_engine
from supportlens.mapping.models import MappingIdentity, MappingIpDevice
from supportlens.tasks.status import backlog, wait_until_drained
from tests.mapping.helpers import Batch, links, send, store, wipe

ROOT = Path(__file__).resolve().parents[2]


def _env(database_url: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        "SUPPORTLENS_ENVIRONMENT": "test",
        "SUPPORTLENS_DATABASE_URL": database_url,
        "SUPPORTLENS_SECRET_KEY": "test-secret-key-not-for-production",
        "SUPPORTLENS_LOG_LEVEL": "WARNING",
        **extra,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


class Processes:
    def __init__(self) -> None:
        self.running: list[subprocess.Popen[bytes]] = []

    def start(self, args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(args, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=ROOT)
        self.running.append(proc)
        return proc


@pytest.fixture
def processes() -> Iterator[Processes]:
    started = Processes()
    yield started
    for proc in started.running:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# A worker process as `supportlens worker` runs it, plus one test task scheduled every second that
# records which process ran which due time.
EVERY_SECOND_WORKER = textwrap.dedent(
    """
    import asyncio, os
    from sqlalchemy import text
    from supportlens.config import get_settings
    from supportlens.db.engine import make_engine, make_sessionmaker
    from supportlens.tasks.queue import Runtime, make_queue, run_worker

    async def main():
        settings = get_settings()
        engine = make_engine(settings)
        runtime = Runtime(settings=settings, engine=engine, sessionmaker=make_sessionmaker(engine))
        queue = make_queue(settings)

        @queue.periodic(cron="* * * * * *")
        @queue.task(name="test.every_second", queue="periodic", pass_context=True)
        async def every_second(context, timestamp):
            async with engine.begin() as conn:
                insert = text("INSERT INTO test_periodic_runs VALUES (:t, :pid)")
                await conn.execute(insert, {"t": timestamp, "pid": os.getpid()})

        async with queue.open_async():
            await run_worker(queue, runtime, concurrency=2, install_signal_handlers=True)

    asyncio.run(main())
    """
)


async def test_a_due_periodic_run_happens_once_across_two_worker_processes(
    database_url, engine, processes, tmp_path
):
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS test_periodic_runs"))
        await conn.execute(text("CREATE TABLE test_periodic_runs (due bigint NOT NULL, pid int NOT NULL)"))
    env = _env(database_url)
    workers = [
        processes.start([sys.executable, "-c", EVERY_SECOND_WORKER], env, tmp_path / f"worker{n}.log")
        for n in range(2)
    ]
    try:
        rows: list = []
        for _ in range(600):  # until 6 due times ran (both processes start in a few seconds)
            for n, proc in enumerate(workers):
                assert proc.poll() is None, (tmp_path / f"worker{n}.log").read_text()[-3000:]
            async with engine.connect() as conn:
                rows = list((await conn.execute(text("SELECT due, pid FROM test_periodic_runs"))).all())
            if len(rows) >= 6:
                break
            await asyncio.sleep(0.1)
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("DROP TABLE IF EXISTS test_periodic_runs"))
    due_times = [due for due, _ in rows]
    assert len(due_times) >= 6, rows
    assert len(due_times) == len(set(due_times)), rows  # no due time ran twice
    assert {pid for _, pid in rows} <= {proc.pid for proc in workers}


WORLD = [
    Batch("laptop", "home-1", 0, 10, ip="81.2.3.4", email="jane@acme.io"),
    Batch("laptop", "home-2", 60, 10, ip="81.2.3.4"),
    Batch("tablet", "home-3", 65, 10, ip="81.2.3.4"),
    Batch("laptop", "cafe-1", 600, 10, ip="62.9.9.9"),
    Batch("phone", "away-1", 900, 10, ip="100.1.1.1", email="john@acme.io"),
    Batch("phone", "away-2", 960, 10, ip="100.1.1.1"),
]


async def test_a_worker_killed_mid_job_leaves_every_batch_mapped_exactly_once(
    database_url, db, sessionmaker, processes, tmp_path
):
    # What mapping each batch on arrival gives, for comparison.
    for b in WORLD:
        await send(db, b)
    expected = await links(db, with_evidence=True)
    await wipe(db)
    for b in WORLD:
        await store(db, b)
    env = _env(database_url, SUPPORTLENS_TASK_STALLED_SECONDS="2")
    worker = [sys.executable, "-m", "supportlens.cli", "worker", "--concurrency", "2"]

    # The first worker takes two jobs and blocks inside them: the test holds the mapping mutex.
    async with sessionmaker() as blocker:
        await mapping_engine.mapping_mutex(blocker)
        first = processes.start(worker, env, tmp_path / "first.log")
        for _ in range(300):
            async with sessionmaker() as probe:
                if (await backlog(probe, "mapping")).doing == 2:  # both of its slots wait on the mutex
                    break
            assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the worker never took a mapping job")
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        await blocker.rollback()
    async with sessionmaker() as probe:
        assert (await backlog(probe, "mapping")).doing == 2  # left "doing" by the dead worker

    # Once its heartbeat is older than the stalled timeout, a new worker retries the job, then the rest.
    await asyncio.sleep(3)
    processes.start(worker, env, tmp_path / "second.log")
    try:
        await wait_until_drained(sessionmaker, within=120)
    except TimeoutError:
        print((tmp_path / "second.log").read_text()[-20000:].replace("\\n", "\n"))
        raise
    db.expire_all()
    assert await links(db, with_evidence=True) == expected
    identities = (
        await db.execute(
            select(MappingIdentity.session_id, MappingIdentity.customer_email, func.count()).group_by(
                MappingIdentity.session_id, MappingIdentity.customer_email
            )
        )
    ).all()
    assert sorted(n for *_, n in identities) == [1, 1]  # each sign-in recorded once
    assert await db.scalar(select(func.count()).select_from(MappingIpDevice)) == 4
    async with sessionmaker() as probe:
        assert (await backlog(probe, "mapping")).failed == 0
