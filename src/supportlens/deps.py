"""Typed dependencies for the app's shared resources, so handlers name what they use instead of reading
`request.app.state`: the vendor clients and the customer directory built at start-up, the session
factory for work after the response. The database session, the settings and the signed-in agent are in
`auth/deps.py`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from supportlens.customers.directory import CustomerDirectory, get_directory
from supportlens.integrations.dwolla.client import DwollaClient
from supportlens.integrations.hubspot.client import HubSpotClient


async def _hubspot(request: Request) -> HubSpotClient:
    return request.app.state.hubspot


async def _dwolla(request: Request) -> DwollaClient:
    return request.app.state.dwolla


async def _directory(request: Request) -> CustomerDirectory:
    return get_directory(request.app)


async def _sessionmaker(request: Request) -> async_sessionmaker[AsyncSession]:
    return request.app.state.sessionmaker


HubSpotDep = Annotated[HubSpotClient, Depends(_hubspot)]
DwollaDep = Annotated[DwollaClient, Depends(_dwolla)]
DirectoryDep = Annotated[CustomerDirectory, Depends(_directory)]
# For work that outlives the request's own session (background tasks, a separate transaction).
SessionmakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(_sessionmaker)]
