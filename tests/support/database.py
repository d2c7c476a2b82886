"""A throwaway PostgreSQL database per test run.

The server: SUPPORTLENS_TEST_PG_URL when set; else the one on 127.0.0.1:5432 when it answers; else an
embedded PostgreSQL (supportlens.db.embedded) with its data in the temporary directory, started once
and stopped when the test process exits. SUPPORTLENS_TEST_PG_URL=embedded asks for the embedded one
even when 127.0.0.1:5432 answers.
"""

from __future__ import annotations

import atexit
import functools
import os
import socket
import tempfile
import uuid
from contextlib import ExitStack
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

LOCAL_SERVER = ("127.0.0.1", 5432)
LOCAL_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
EMBEDDED_DIR = Path(tempfile.gettempdir()) / f"supportlens-test-postgres-{os.getuid()}"

_embedded = ExitStack()
atexit.register(_embedded.close)


def _answers(address: tuple[str, int]) -> bool:
    try:
        with socket.create_connection(address, timeout=1):
            return True
    except OSError:
        return False


@functools.cache
def admin_url() -> str:
    """The URL of the server's `postgres` database, from which test databases are made."""
    configured = os.environ.get("SUPPORTLENS_TEST_PG_URL", "")
    if configured and configured != "embedded":
        return configured
    if not configured and _answers(LOCAL_SERVER):
        return LOCAL_ADMIN_URL
    from supportlens.db import embedded

    url = _embedded.enter_context(embedded.running(EMBEDDED_DIR))
    return make_url(url).set(database="postgres").render_as_string(hide_password=False)


def url_of(database: str) -> str:
    return make_url(admin_url()).set(database=database).render_as_string(hide_password=False)


async def create_database(_tmp_dir: Path | None = None) -> str:
    name = f"supportlens_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(admin_url(), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return url_of(name)


async def drop_database(url: str) -> None:
    name = make_url(url).database
    admin = create_async_engine(admin_url(), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


async def empty_all_tables(engine: AsyncEngine) -> None:
    """Remove every row between tests (TRUNCATE skips the audit log's row triggers)."""
    async with engine.begin() as conn:
        existing = (
            (await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")))
            .scalars()
            .all()
        )
        names = [t for t in existing if t != "alembic_version"]
        if names:
            await conn.execute(
                text("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY CASCADE")
            )
