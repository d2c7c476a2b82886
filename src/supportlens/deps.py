"""Typed dependencies for the app's shared resources, so handlers name what they use instead of reading
`request.app.state`: the vendor clients and the customer directory built at start-up, the session
factory for work after the response, and the few resources built on first use (`per_app`). The database
session, the settings and the signed-in agent are in `auth/deps.py`.

These providers are the only readers of `app.state` outside the composition root (app.py, which builds
what is stored there); services take plain arguments."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from supportlens.config import Settings
from supportlens.customers.directory import CustomerDirectory
from supportlens.integrations.clarity.export_api import ClarityExportClient
from supportlens.integrations.dwolla.client import DwollaClient
from supportlens.integrations.hubspot.client import HubSpotClient

T = TypeVar("T")


async def _hubspot(request: Request) -> HubSpotClient:
    return request.app.state.hubspot


async def _dwolla(request: Request) -> DwollaClient:
    return request.app.state.dwolla


async def _clarity_export(request: Request) -> ClarityExportClient:
    return request.app.state.clarity_export


async def _directory(request: Request) -> CustomerDirectory:
    return request.app.state.customer_directory


async def _sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    return request.app.state.sessionmaker


def per_app(name: str, build: Callable[[Settings], T]) -> Callable[[Request], Awaitable[T]]:
    """A dependency for a resource built from the settings on first use and kept for the app's life
    (one per app, not per process: tests run several apps with different settings)."""

    async def provide(request: Request) -> T:
        state = request.app.state
        found: T | None = getattr(state, name, None)
        if found is None:
            found = build(state.settings)
            setattr(state, name, found)
        return found

    return provide


HubSpotDep = Annotated[HubSpotClient, Depends(_hubspot)]
DwollaDep = Annotated[DwollaClient, Depends(_dwolla)]
ClarityExportDep = Annotated[ClarityExportClient, Depends(_clarity_export)]
DirectoryDep = Annotated[CustomerDirectory, Depends(_directory)]
# For work that outlives the request's own session (background tasks, a separate transaction).
SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(_sessionmaker)]
