"""Async engine and session factory, one per settings object."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from supportlens.config import Settings


def _ping_when_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """Ping a pooled connection on checkout only when it sat idle `idle_seconds` or more.

    SQLAlchemy's `pool_pre_ping` pings on every checkout: a round trip per transaction, which under
    load is a sizeable share of a request's database time. A connection handed back milliseconds ago
    is alive; one idle for a while may have been closed by a server restart or a firewall. A
    connection that breaks while in use is caught by SQLAlchemy's disconnect handling, which
    invalidates the pool, so only requests already holding it fail.
    """
    checked_in_at = "supportlens_checked_in_at"

    def on_checkin(_dbapi_conn: Any, record: Any) -> None:
        record.info[checked_in_at] = time.monotonic()

    def on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(checked_in_at)
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as exc:  # the pool drops this connection and checks out another
            raise DisconnectionError(f"idle connection failed its ping: {type(exc).__name__}") from exc

    event.listen(engine.sync_engine, "checkin", on_checkin)
    event.listen(engine.sync_engine, "checkout", on_checkout)


def make_engine(settings: Settings) -> AsyncEngine:
    engine = create_async_engine(
        settings.require_database_url(),
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_pool_size,
        # The connection handed back last is the next one out: the busy few stay warm (no ping), the
        # rest sit idle and are pinged before use.
        pool_use_lifo=True,
    )
    _ping_when_idle(engine, settings.database_ping_after_idle_seconds)
    return engine


async def autocommit(db: AsyncSession) -> None:
    """Run the session's next transaction in autocommit mode: no BEGIN and COMMIT round trips.

    For work that is one statement at a time, where each statement on its own is what must be atomic
    (a sign-in check, an audit row, a read). It takes effect only when the session has no
    transaction under way (else it changes nothing); the connection goes back to the pool with its
    usual isolation level.
    """
    if not db.in_transaction():
        await db.connection(execution_options={"isolation_level": "AUTOCOMMIT"})


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def session_scope(maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with maker() as session:
        yield session
