"""Worker load sharing under SO_REUSEPORT: a worker carrying clearly more requests in flight than its
least busy sibling closes a connection after its answer, so that the client reconnects and the kernel
hashes the new connection afresh (the effect on a real pair of workers is in bench/search.py's busy
shares)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from supportlens import serving
from supportlens.middleware import RequestContextMiddleware
from supportlens.serving import WorkerLoad


@pytest.fixture
def sibling_pid():
    """A live process standing in for the other worker (only its pid is used)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


def _set(load: WorkerLoad, in_flight: int) -> None:
    load.in_flight = in_flight - 1
    load.enter()


def test_hands_back_only_when_clearly_busier_than_a_sibling(tmp_path, sibling_pid) -> None:
    me = WorkerLoad(tmp_path)
    sibling = WorkerLoad(tmp_path, pid=sibling_pid)
    try:
        _set(me, 3)
        _set(sibling, 2)
        assert not me.hand_back()  # one more than the sibling is noise
        _set(sibling, 1)
        assert me.hand_back()  # two more: this connection goes back to the kernel
        assert not me.hand_back()  # and not another one before the counts catch up
        me._handed_back_at -= WorkerLoad.INTERVAL
        assert me.hand_back()
        assert not sibling.hand_back()  # the idle one keeps its connections
        assert me.handed_back == 2
    finally:
        me.close()
        sibling.close()
    assert list(tmp_path.iterdir()) == []


def test_a_worker_alone_or_beside_a_dead_one_keeps_its_connections(tmp_path) -> None:
    me = WorkerLoad(tmp_path)
    _set(me, 10)
    assert not me.hand_back()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    ghost = WorkerLoad(tmp_path, pid=gone.pid)  # a crashed worker's file left behind, at 0
    me._scanned_at -= WorkerLoad.RESCAN
    assert not me.hand_back()
    ghost.close()
    me.close()


def test_the_directory_gone_at_shutdown_means_no_siblings(tmp_path, sibling_pid) -> None:
    directory = tmp_path / "load"
    directory.mkdir()
    me, sibling = WorkerLoad(directory), WorkerLoad(directory, pid=sibling_pid)
    _set(me, 5)
    assert me.hand_back()
    shutil.rmtree(directory)  # as run_workers does once its workers have stopped
    me._scanned_at -= WorkerLoad.RESCAN
    me._handed_back_at -= WorkerLoad.INTERVAL
    assert not me.hand_back()
    sibling.close()
    me.close()


async def test_the_busier_worker_answers_with_connection_close(tmp_path, sibling_pid, monkeypatch) -> None:
    release = asyncio.Event()

    async def slow(request):
        await release.wait()
        return PlainTextResponse("ok")

    app = RequestContextMiddleware(Starlette(routes=[Route("/slow", slow)]))
    me, sibling = WorkerLoad(tmp_path), WorkerLoad(tmp_path, pid=sibling_pid)
    monkeypatch.setattr(serving, "_worker_load", me)
    try:
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t") as c:
            pending = [asyncio.create_task(c.get("/slow")) for _ in range(3)]
            while me.in_flight < 3:
                await asyncio.sleep(0.01)
            release.set()
            answers = await asyncio.gather(*pending)
    finally:
        me.close()
        sibling.close()
    closing = [r for r in answers if r.headers.get("connection") == "close"]
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert len(closing) == 1  # 3 in flight against an idle sibling: one handed back, then the pause
    assert me.in_flight == 0


async def test_no_worker_load_without_run_workers(monkeypatch) -> None:
    monkeypatch.delenv(serving.LOAD_DIR_ENV, raising=False)
    monkeypatch.setattr(serving, "_worker_load", None)
    assert serving.worker_load() is None
