"""`supportlens serve`: gunicorn's arbiter running uvicorn workers.

gunicorn starts `workers` processes, restarts one that dies or stops reporting in (`timeout`), and on
SIGTERM stops taking connections and gives requests in flight `graceful_timeout` to finish. With
`reuse_port` every worker binds its own SO_REUSEPORT socket after it forks, and Linux spreads new
connections over the workers' sockets; uvicorn's own supervisor shares one socket, on which the first
worker awake accepted a whole burst of keep-alive connections (bench/README.md has the figures).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger
from uvicorn_worker import UvicornWorker


class Worker(UvicornWorker):
    """uvicorn in a gunicorn worker, without the `server: uvicorn` header (create_app's logging
    configuration switches uvicorn's access line off: the app writes its own, without PII)."""

    CONFIG_KWARGS: dict[str, Any] = {"loop": "auto", "http": "auto", "server_header": False}


class JsonLogger(Logger):
    """gunicorn's own lines (workers booted, exited, restarted) through the app's JSON handler on the
    root logger, masked like every other line, instead of gunicorn's plain-text handler."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        self.error_log.handlers.clear()
        self.error_log.propagate = True


def _forget_worker(_arbiter: Any, worker: Any) -> None:
    """gunicorn's child_exit hook: drop a gone worker's live gauges from /metrics (its counters stay)."""
    from prometheus_client import multiprocess

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)


def check_port(host: str, port: int) -> None:
    """OSError now if (host, port) is taken. The arbiter binds nothing itself, and a worker that cannot
    bind exits only to be started again, for ever; another `serve` there would share the port."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is no obstacle
        probe.bind((host, port))


def proxy_allow_list(value: str) -> list[str]:
    """SUPPORTLENS_FORWARDED_ALLOW_IPS as a list: addresses or networks, or `*` for any proxy."""
    allowed = [part.strip() for part in value.split(",") if part.strip()]
    for part in allowed:
        if part != "*":
            ipaddress.ip_network(part)  # ValueError naming the part that is neither
    return allowed


class Server(BaseApplication):
    """The app served by gunicorn's arbiter, configured here rather than from a gunicorn.conf.py."""

    def __init__(
        self, *, host: str, port: int, workers: int, forwarded_allow_ips: str, log_level: str = "info"
    ) -> None:
        self.options: dict[str, Any] = {
            "bind": [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"],
            "workers": workers,
            "worker_class": f"{__name__}.Worker",
            "reuse_port": True,
            # A worker that has not reported in for this long is killed and replaced. A busy 2-core
            # host can starve a healthy worker for seconds; 30 s is gunicorn's default.
            "timeout": 30,
            "graceful_timeout": 20,
            # Idle keep-alive connections close after 5 s (uvicorn's default; gunicorn's is 2 s). A load
            # balancer in front should drop its idle upstream connections sooner (docs/deploy.md).
            "keepalive": 5,
            "forwarded_allow_ips": ",".join(proxy_allow_list(forwarded_allow_ips)),
            "child_exit": _forget_worker,
            # Several `serve` processes may run on one host (replicas, tests): no shared control socket.
            "control_socket_disable": True,
            "proc_name": "supportlens",
            "logger_class": f"{__name__}.JsonLogger",
            "loglevel": log_level.lower(),  # gunicorn's own lines and uvicorn's (not the app's)
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from supportlens.app import create_app

        return create_app()
