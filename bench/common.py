"""Helpers the benchmark scripts share: a free port, and waiting until every worker listens."""

from __future__ import annotations

import socket
import time


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
