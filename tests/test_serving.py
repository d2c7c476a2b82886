"""`supportlens serve` under gunicorn's arbiter: how it is configured, what its child_exit hook does
to /metrics, and a bad proxy allow-list refused before anything starts. The arbiter and its workers
running for real are in tests/scale/test_workers_metrics.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from types import SimpleNamespace

from prometheus_client import CollectorRegistry, multiprocess
from typer.testing import CliRunner

from supportlens import serving
from supportlens.cli import app
from supportlens.config import get_settings

# serve refuses a bad setting or a taken port before it uses a database (and without one it would
# start an embedded PostgreSQL)
UNUSED_DATABASE = "postgresql+asyncpg://postgres@127.0.0.1:1/never_used"


def _samples(directory: str) -> dict[str, float]:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)
    return {
        s.name + str(sorted(s.labels.items())): s.value
        for metric in registry.collect()
        for s in metric.samples
        if s.name in ("supportlens_http_requests_in_progress", "supportlens_ingest_events_total")
    }


def test_a_gone_worker_leaves_the_live_gauge_and_keeps_its_counts(tmp_path, monkeypatch) -> None:
    # A worker that dies in the middle of a request: its files stay in the shared directory.
    worker = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import os
                from supportlens.metrics import HTTP_IN_PROGRESS, INGEST_EVENTS
                HTTP_IN_PROGRESS.inc()
                INGEST_EVENTS.labels("accepted").inc(3)
                print(os.getpid(), flush=True)
                os._exit(9)
                """
            ),
        ],
        env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert worker.returncode == 9, worker.stderr
    pid = int(worker.stdout)
    in_progress = "supportlens_http_requests_in_progress[]"
    accepted = "supportlens_ingest_events_total[('outcome', 'accepted')]"
    assert _samples(str(tmp_path)) == {in_progress: 1.0, accepted: 3.0}

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    serving._forget_worker(None, SimpleNamespace(pid=pid))  # as gunicorn's arbiter calls it

    assert _samples(str(tmp_path)) == {accepted: 3.0}  # no request in flight any more; counts kept


def test_the_arbiter_runs_uvicorn_workers_each_on_its_own_socket() -> None:
    server = serving.Server(host="::1", port=8123, workers=3, forwarded_allow_ips="10.0.0.0/8, 127.0.0.1")
    cfg = server.cfg
    assert cfg.bind == ["[::1]:8123"]
    assert cfg.workers == 3
    assert cfg.worker_class is serving.Worker
    assert cfg.reuse_port  # each worker binds its own socket after it forks
    assert cfg.forwarded_allow_ips == ["10.0.0.0/8", "127.0.0.1"]
    assert cfg.child_exit is serving._forget_worker
    assert cfg.control_socket_disable
    assert serving.Worker.CONFIG_KWARGS["server_header"] is False
    assert cfg.loglevel == "info"
    anywhere = serving.Server(host="0.0.0.0", port=80, workers=1, forwarded_allow_ips="*")
    assert anywhere.cfg.bind == ["0.0.0.0:80"]


def test_a_bad_forwarded_allow_list_is_a_clear_message(monkeypatch) -> None:
    monkeypatch.setenv("SUPPORTLENS_FORWARDED_ALLOW_IPS", "127.0.0.1, the-proxy")
    monkeypatch.setenv("SUPPORTLENS_DATABASE_URL", UNUSED_DATABASE)
    monkeypatch.setenv("SUPPORTLENS_GC_FREEZE", "true")  # restored afterwards (serve sets it)
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["serve", "--port", "8124"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert "SUPPORTLENS_FORWARDED_ALLOW_IPS" in result.output and "the-proxy" in result.output
    assert "Traceback" not in result.output


def test_a_port_in_use_is_a_clear_message(monkeypatch) -> None:
    monkeypatch.setenv("SUPPORTLENS_GC_FREEZE", "true")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")  # serve sets it; restored (unset) afterwards
    monkeypatch.setenv("SUPPORTLENS_DATABASE_URL", UNUSED_DATABASE)
    get_settings.cache_clear()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        try:
            result = CliRunner().invoke(app, ["serve", "--port", str(port), "--workers", "2"])
        finally:
            get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert f"cannot listen on 127.0.0.1:{port}" in result.output and "in use" in result.output


async def test_x_forwarded_for_is_honoured_only_from_the_allowed_proxies() -> None:
    from gunicorn.glogging import Logger

    server = serving.Server(host="127.0.0.1", port=8125, workers=1, forwarded_allow_ips="10.0.0.0/8")
    worker = serving.Worker(0, os.getpid(), [], server, 15, server.cfg, Logger(server.cfg))
    seen: list[str] = []

    async def app(scope, receive, send) -> None:
        seen.append(scope["client"][0])

    worker.config.app = app
    worker.config.load()  # what uvicorn does in the worker: wraps the app in its proxy-headers middleware
    for peer in ("10.1.2.3", "203.0.113.9"):  # a proxy of ours; anyone else
        scope = {
            "type": "http",
            "client": (peer, 5000),
            "headers": [(b"x-forwarded-for", b"198.51.100.7")],
        }
        await worker.config.loaded_app(scope, None, None)
    assert seen == ["198.51.100.7", "203.0.113.9"]
