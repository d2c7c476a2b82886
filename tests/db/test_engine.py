"""The engine's connection pool and the autocommit helper."""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest
from sqlalchemy import exc, select, text, update
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from supportlens.auth.models import Agent
from supportlens.db.engine import autocommit, make_engine


async def _pid(engine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _terminate(database_url: str, pid: int) -> None:
    """The server ends a pooled connection behind the pool's back (a restart, a firewall)."""
    admin = create_async_engine(database_url, poolclass=NullPool)
    async with admin.connect() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    await admin.dispose()


@asynccontextmanager
async def _one_connection_pool(settings_factory, ping_after_idle_seconds: float):
    engine = make_engine(
        settings_factory(database_pool_size=1, database_ping_after_idle_seconds=ping_after_idle_seconds)
    )
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_an_idle_connection_is_pinged_and_replaced(settings_factory, database_url) -> None:
    async with _one_connection_pool(settings_factory, 0) as engine:
        dead = await _pid(engine)
        await _terminate(database_url, dead)
        assert await _pid(engine) != dead  # the ping failed, the pool connected afresh, no error


async def test_a_connection_used_moments_ago_is_not_pinged(settings_factory, database_url) -> None:
    # The trade-off, shown: within the idle limit a dropped connection is found by the query itself,
    # which fails once; SQLAlchemy then invalidates the pool and the next query reconnects.
    async with _one_connection_pool(settings_factory, 3600) as engine:
        dead = await _pid(engine)
        await _terminate(database_url, dead)
        with pytest.raises(exc.DBAPIError) as failed:
            await _pid(engine)
        assert failed.value.connection_invalidated
        assert await _pid(engine) != dead


async def test_autocommit_writes_each_statement_at_once(sessionmaker, signed_in) -> None:
    agent = await signed_in("agent")
    async with sessionmaker() as db:
        await autocommit(db)
        await db.execute(update(Agent).where(Agent.id == agent.agent.id).values(name="Renamed"))
        await db.rollback()  # nothing to roll back: the UPDATE stood on its own
    async with sessionmaker() as db:
        assert await db.scalar(select(Agent.name).where(Agent.id == agent.agent.id)) == "Renamed"


async def test_autocommit_leaves_a_transaction_under_way_alone(sessionmaker, signed_in) -> None:
    agent = await signed_in("agent")
    async with sessionmaker() as db:
        await db.execute(update(Agent).where(Agent.id == agent.agent.id).values(name="Renamed"))
        await autocommit(db)  # too late for this transaction: it stays one
        await db.rollback()
    async with sessionmaker() as db:
        assert await db.scalar(select(Agent.name).where(Agent.id == agent.agent.id)) != "Renamed"
