"""Run Alembic migrations from code (CLI, demo, tests) without an alembic.ini on disk."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import create_async_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["database_url"] = database_url
    return cfg


async def _run(database_url: str, action: str, revision: str) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:

            def go(sync_conn: object) -> None:
                cfg = alembic_config(database_url)
                cfg.attributes["connection"] = sync_conn
                getattr(command, action)(cfg, revision)

            await conn.run_sync(go)
    finally:
        await engine.dispose()


def upgrade(database_url: str, revision: str = "head") -> None:
    asyncio.run(_run(database_url, "upgrade", revision))


def downgrade(database_url: str, revision: str = "base") -> None:
    asyncio.run(_run(database_url, "downgrade", revision))


async def upgrade_async(database_url: str, revision: str = "head") -> None:
    await _run(database_url, "upgrade", revision)


async def downgrade_async(database_url: str, revision: str = "base") -> None:
    await _run(database_url, "downgrade", revision)
