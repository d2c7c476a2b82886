"""Builds the vendor clients once per app (a STARTUP_HOOK) and closes them at shutdown."""

from __future__ import annotations

from contextlib import AsyncExitStack

from fastapi import FastAPI

from supportlens.config import Settings
from supportlens.integrations.dwolla.client import DwollaClient
from supportlens.integrations.hubspot.client import HubSpotClient


def build_clients(settings: Settings) -> tuple[HubSpotClient, DwollaClient]:
    return HubSpotClient(settings), DwollaClient(settings)


async def startup_hook(app: FastAPI, stack: AsyncExitStack) -> None:
    hubspot, dwolla = build_clients(app.state.settings)
    app.state.hubspot = hubspot
    app.state.dwolla = dwolla
    stack.push_async_callback(hubspot.aclose)
    stack.push_async_callback(dwolla.aclose)
