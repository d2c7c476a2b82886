"""`supportlens serve --workers N`: uvicorn's worker supervisor, with one listening socket per worker.

uvicorn's own multi-worker mode shares one listening socket; whichever worker wakes first accepts,
so a burst of new keep-alive connections (a reverse proxy's upstream pool, a load balancer, a busy
website's beacons) can all land on one worker while the others idle: measured with `bench/ingest.py`,
one worker at 100 % CPU and the other at 0 %. Here every worker binds its own socket with
SO_REUSEPORT, and Linux spreads new connections over them by a hash of the connection's addresses.
uvicorn's supervisor still starts, health-checks, restarts and stops the workers.

The hash places a connection once; keep-alive connections then stay where they landed, so an unlucky
draw can leave one worker with twice its share while another idles. `WorkerLoad` evens that out.
"""

from __future__ import annotations

import atexit
import mmap
import os
import shutil
import socket
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

LOAD_DIR_ENV = "SUPPORTLENS_WORKER_LOAD_DIR"

HAS_REUSEPORT = hasattr(socket, "SO_REUSEPORT")


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def bind_reuseport(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) that other SO_REUSEPORT sockets of this user may share."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


class WorkerListener:
    """Stands in for the listening socket uvicorn hands to each worker process.

    The supervisor pickles its socket list into every worker it starts (and restarts); this object
    unpickles, in the worker, as a fresh SO_REUSEPORT socket of that worker's own.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    def __reduce__(self) -> tuple[Any, tuple[str, int]]:
        return bind_reuseport, (self.host, self.port)


class WorkerLoad:
    """This worker's requests in flight, in a small file its sibling workers map, and theirs.

    A worker carrying clearly more requests than its least busy sibling answers one of them with
    `Connection: close`: the client (a browser, a reverse proxy's upstream pool) reconnects, and the
    kernel hashes the new connection afresh, onto another worker as often as not. Repeated while the
    gap lasts, this moves keep-alive connections from the busy worker to the idle one.
    """

    GAP = 2  # requests in flight above the least busy sibling before a connection is handed back
    INTERVAL = 0.05  # seconds between two connections handed back, for the counts to catch up
    RESCAN = 1.0  # seconds between looks for siblings started, restarted or gone
    _COUNT = struct.Struct("q")

    def __init__(self, directory: str | Path, pid: int | None = None) -> None:
        self.directory = Path(directory)
        self.pid = pid or os.getpid()
        self.path = self.directory / f"{self.pid}.load"
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, self._COUNT.size)
            self._own = mmap.mmap(fd, self._COUNT.size)
        finally:
            os.close(fd)
        self.in_flight = 0
        self.handed_back = 0
        self._siblings: dict[int, mmap.mmap] = {}
        self._scanned_at = float("-inf")
        self._handed_back_at = float("-inf")

    def enter(self) -> None:
        self.in_flight += 1
        self._COUNT.pack_into(self._own, 0, self.in_flight)

    def leave(self) -> None:
        self.in_flight -= 1
        self._COUNT.pack_into(self._own, 0, self.in_flight)

    def hand_back(self) -> bool:
        """Whether the response being sent should close its connection (and count it if so)."""
        now = time.monotonic()
        if now - self._scanned_at >= self.RESCAN:
            self._scan(now)
        if not self._siblings or now - self._handed_back_at < self.INTERVAL:
            return False
        least = min(self._COUNT.unpack_from(m, 0)[0] for m in self._siblings.values())
        if self.in_flight - least < self.GAP:
            return False
        self._handed_back_at = now
        self.handed_back += 1
        return True

    def _scan(self, now: float) -> None:
        self._scanned_at = now
        alive: set[int] = set()
        try:
            entries = list(os.scandir(self.directory))
        except OSError:  # the supervisor removed the directory on its way out
            entries = []
        for entry in entries:
            stem, _, suffix = entry.name.partition(".")
            if suffix != "load" or not stem.isdigit() or int(stem) == self.pid or not _alive(int(stem)):
                continue  # a crashed worker's file stays behind; its successor writes its own
            pid = int(stem)
            alive.add(pid)
            if pid not in self._siblings:
                try:
                    with open(entry.path, "rb") as f:
                        self._siblings[pid] = mmap.mmap(f.fileno(), self._COUNT.size, access=mmap.ACCESS_READ)
                except (OSError, ValueError):  # gone, or not sized yet: the next scan sees it
                    continue
        for pid in set(self._siblings) - alive:
            self._siblings.pop(pid).close()

    def close(self) -> None:
        for m in self._siblings.values():
            m.close()
        self._siblings.clear()
        self._own.close()
        self.path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_worker_load: WorkerLoad | None = None


def worker_load() -> WorkerLoad | None:
    """This process's WorkerLoad when it is one of `run_workers`' workers, else None."""
    global _worker_load
    directory = os.environ.get(LOAD_DIR_ENV)
    if _worker_load is None and directory and Path(directory).is_dir():
        _worker_load = WorkerLoad(directory)
        atexit.register(_worker_load.close)
    return _worker_load


def run_workers(config: Any) -> None:
    """Serve `config` (a uvicorn.Config) with config.workers processes, one socket each."""
    from uvicorn.supervisors import Multiprocess

    # Bound here, never listened on: reserves the port (a clear error now if it is taken) without
    # joining the group of sockets that receive connections.
    try:
        guard = bind_reuseport(config.host, config.port)
    except OSError as exc:
        raise SystemExit(f"cannot listen on {config.host}:{config.port}: {exc.strerror}") from exc
    load_dir = tempfile.mkdtemp(prefix="supportlens-load-")
    os.environ[LOAD_DIR_ENV] = load_dir  # inherited by every worker started from here
    try:
        Multiprocess(config, sockets=[WorkerListener(config.host, config.port)]).run()  # type: ignore[list-item]
    finally:
        guard.close()
        os.environ.pop(LOAD_DIR_ENV, None)
        shutil.rmtree(load_dir, ignore_errors=True)
