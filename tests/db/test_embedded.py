"""The embedded PostgreSQL: started with a migrated database, its data kept for the next start, and
stopped when the process that started it leaves (returns, is killed with SIGTERM, or its partner in
the data directory died with SIGKILL)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx2
import psutil
import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from supportlens.cli import app
from supportlens.config import get_settings
from supportlens.db import embedded
from tests.support.live import free_port


@pytest.fixture
def tmp_path(embedded_tmp_path: Path) -> Path:
    return embedded_tmp_path


def _server_pid(data_dir: Path) -> int:
    return int((data_dir / "postmaster.pid").read_text().split()[0])


def _gone(pid: int, within: float = 10) -> bool:
    deadline = time.monotonic() + within
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _fetch(url: str, sql: str) -> list[asyncpg.Record]:
    parsed = make_url(url)

    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(
            host=parsed.query["host"], user=parsed.username, database=parsed.database
        )
        try:
            if not sql.startswith("SELECT"):
                await conn.execute(sql)  # several statements at once, nothing to read back
                return []
            return list(await conn.fetch(sql))
        finally:
            await conn.close()

    return asyncio.run(go())


def test_starts_a_migrated_database_on_a_unix_socket_and_stops_on_leaving(tmp_path):
    data_dir = tmp_path / "pg"
    with embedded.running(data_dir) as url:
        parsed = make_url(url)
        assert parsed.drivername == "postgresql+asyncpg" and parsed.database == embedded.DATABASE
        assert parsed.host is None  # a Unix socket only: no TCP port to reach from elsewhere
        pid = _server_pid(data_dir)
        assert psutil.pid_exists(pid)
        [extension] = _fetch(url, "SELECT extname FROM pg_extension WHERE extname = 'pg_trgm'")
        assert extension["extname"] == "pg_trgm"
        [version] = _fetch(url, "SELECT version_num FROM alembic_version")
        assert version["version_num"]  # migrated: the app's tables are there
        assert _fetch(url, "SELECT 1 FROM pg_tables WHERE tablename = 'user_sessions'")
    assert _gone(pid), "the server outlived the block that started it"
    assert not (data_dir / "postmaster.pid").exists()


def test_the_data_directory_is_kept_and_reused(tmp_path):
    data_dir = tmp_path / "pg"
    with embedded.running(data_dir) as url:
        _fetch(url, "CREATE TABLE kept (note text); INSERT INTO kept VALUES ('still here')")
        initialised = (data_dir / "PG_VERSION").stat().st_mtime_ns
    with embedded.running(data_dir) as url:
        assert [r["note"] for r in _fetch(url, "SELECT note FROM kept")] == ["still here"]
        assert (data_dir / "PG_VERSION").stat().st_mtime_ns == initialised  # no second initdb
        pid = _server_pid(data_dir)
    assert _gone(pid)


def test_a_fresh_database_replaces_the_old_one_on_the_same_server_files(tmp_path):
    data_dir = tmp_path / "pg"
    with embedded.running(data_dir) as url:
        _fetch(url, "CREATE TABLE kept (note text)")
        initialised = (data_dir / "PG_VERSION").stat().st_mtime_ns
    for _ in range(2):  # the first fresh start makes the template, the second starts from it
        with embedded.running(data_dir, fresh_database=True) as url:
            assert not _fetch(url, "SELECT 1 FROM pg_tables WHERE tablename = 'kept'")
            assert _fetch(url, "SELECT 1 FROM pg_tables WHERE tablename = 'user_sessions'")  # migrated
            assert _fetch(url, "SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
            templates = _fetch(url, f"SELECT 1 FROM pg_database WHERE datname = '{embedded.TEMPLATE}'")
            assert templates
            _fetch(url, "CREATE TABLE kept (note text)")  # must not reach the template
        assert (data_dir / "PG_VERSION").stat().st_mtime_ns == initialised


def test_a_process_killed_with_sigkill_does_not_keep_the_server_running(tmp_path):
    data_dir = tmp_path / "pg"
    with embedded.running(data_dir):
        pass
    # A process that used the server and was killed with SIGKILL: its pid stays in the wheel's list.
    dead = subprocess.Popen(["true"])
    dead.wait()
    (data_dir / embedded.USERS_FILE).write_text(json.dumps([dead.pid]))
    with embedded.running(data_dir):
        pid = _server_pid(data_dir)
    assert _gone(pid), "the server waited for a process that no longer exists"


def test_a_second_process_joins_the_server_and_leaves_it_to_the_first(tmp_path):
    data_dir = tmp_path / "pg"
    with embedded.running(data_dir) as url:
        pid = _server_pid(data_dir)
        script = (
            f"from supportlens.db import embedded\nwith embedded.running({str(data_dir)!r}) as u: print(u)"
        )
        joined = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        )
        assert joined.returncode == 0, joined.stderr
        assert joined.stdout.strip() == url
        assert psutil.pid_exists(pid) and _server_pid(data_dir) == pid  # still ours, still running
    assert _gone(pid)


def test_cli_commands_without_a_database_url_use_the_embedded_server(tmp_path, monkeypatch):
    data_dir = tmp_path / "pg"
    monkeypatch.delenv("SUPPORTLENS_DATABASE_URL", raising=False)
    monkeypatch.setenv("SUPPORTLENS_EMBEDDED_POSTGRES_DIR", str(data_dir))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            app, ["agents", "create", "--email", "ada@example.com", "--role", "admin"]
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert f"database: embedded PostgreSQL, data in {data_dir}" in result.output
    assert "created agent ada@example.com with role admin" in result.output
    assert not (data_dir / "postmaster.pid").exists()  # started for the command, stopped after it
    with embedded.running(data_dir) as url:
        assert [r["email"] for r in _fetch(url, "SELECT email FROM agents")] == ["ada@example.com"]


async def test_serve_without_a_database_url_runs_on_it_and_stops_it_on_sigterm(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "SUPPORTLENS_ENVIRONMENT": "test",
        "SUPPORTLENS_SECRET_KEY": "test-secret-key-not-for-production",
        "SUPPORTLENS_RUN_WORKER": "false",
        "SUPPORTLENS_LOG_LEVEL": "WARNING",
    }
    env.pop("SUPPORTLENS_DATABASE_URL", None)
    env.pop("SUPPORTLENS_EMBEDDED_POSTGRES_DIR", None)
    log = tmp_path / "serve.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "supportlens.cli", "serve", "--port", str(port)],
        cwd=tmp_path,  # the default data directory is relative to the working directory
        env={**env, "PYTHONPATH": os.pathsep.join(sys.path)},
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    data_dir = tmp_path / ".supportlens" / "postgres"
    try:
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            deadline = time.monotonic() + 120
            while True:
                assert proc.poll() is None, log.read_text()[-3000:]
                try:
                    if (await client.get("/readyz")).status_code == 200:
                        break
                except httpx2.TransportError:
                    pass
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                await asyncio.sleep(0.2)
            assert (await client.get("/healthz")).status_code == 200
        assert f"database: embedded PostgreSQL, data in {data_dir}" in log.read_text()
        pid = _server_pid(data_dir)
        proc.send_signal(signal.SIGTERM)
        returncode = await asyncio.to_thread(proc.wait, 30)
        assert returncode in (0, 143), log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _gone(pid), f"PostgreSQL outlived serve:\n{log.read_text()[-3000:]}"
    assert not (data_dir / "postmaster.pid").exists()
