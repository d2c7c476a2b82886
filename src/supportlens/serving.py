"""`supportlens serve --workers N`: uvicorn's worker supervisor, with one listening socket per worker.

uvicorn's own multi-worker mode shares one listening socket; whichever worker wakes first accepts,
so a burst of new keep-alive connections (a reverse proxy's upstream pool, a load balancer, a busy
website's beacons) can all land on one worker while the others idle: measured with `bench/ingest.py`,
one worker at 100 % CPU and the other at 0 %. Here every worker binds its own socket with
SO_REUSEPORT, and Linux spreads new connections over them by a hash of the connection's addresses.
uvicorn's supervisor still starts, health-checks, restarts and stops the workers.
"""

from __future__ import annotations

import socket
from typing import Any

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


def run_workers(config: Any) -> None:
    """Serve `config` (a uvicorn.Config) with config.workers processes, one socket each."""
    from uvicorn.supervisors import Multiprocess

    # Bound here, never listened on: reserves the port (a clear error now if it is taken) without
    # joining the group of sockets that receive connections.
    try:
        guard = bind_reuseport(config.host, config.port)
    except OSError as exc:
        raise SystemExit(f"cannot listen on {config.host}:{config.port}: {exc.strerror}") from exc
    try:
        Multiprocess(config, sockets=[WorkerListener(config.host, config.port)]).run()  # type: ignore[list-item]
    finally:
        guard.close()
