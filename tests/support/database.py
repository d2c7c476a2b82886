"""A throwaway database per test run: PostgreSQL (default) or SQLite, chosen by SUPPORTLENS_TEST_DB."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

PG_ADMIN_URL = os.environ.get(
    "SUPPORTLENS_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


def backend() -> str:
    return os.environ.get("SUPPORTLENS_TEST_DB", "postgres")


def is_postgres() -> bool:
    return backend() == "postgres"


async def create_database(tmp_dir: Path) -> str:
    if not is_postgres():
        return f"sqlite+aiosqlite:///{tmp_dir / f'test-{uuid.uuid4().hex[:8]}.db'}"
    name = f"supportlens_test_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


async def drop_database(url: str) -> None:
    if not url.startswith("postgresql"):
        return
    name = url.rsplit("/", 1)[1]
    admin = create_async_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await admin.dispose()


async def empty_all_tables(engine: AsyncEngine) -> None:
    """Remove every row between tests (TRUNCATE skips the audit log's row triggers on PostgreSQL)."""
    from supportlens.db.models import Base

    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            existing = (
                (
                    await conn.execute(
                        text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
                    )
                )
                .scalars()
                .all()
            )
            names = [t for t in existing if t != "alembic_version"]
            if names:
                await conn.execute(
                    text("TRUNCATE " + ", ".join(f'"{n}"' for n in names) + " RESTART IDENTITY CASCADE")
                )
        else:
            for name in tables:
                await conn.execute(text(f'DELETE FROM "{name}"'))
