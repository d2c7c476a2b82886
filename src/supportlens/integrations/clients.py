"""Builds the vendor clients once per app (a STARTUP_HOOK) and closes them at shutdown."""

from __future__ import annotations

from contextlib import AsyncExitStack

from fastapi import FastAPI

from supportlens.config import Settings
from supportlens.integrations.clarity.export_api import ClarityExportClient
from supportlens.integrations.clarity.recordings import ClarityRecordingsClient
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
    await add_clarity_clients(app.state, stack)


async def add_clarity_clients(state: object, stack: AsyncExitStack) -> None:
    """Clarity's two clients on `state` (the app's, or a worker's runtime), closed with the stack."""
    settings: Settings = state.settings  # type: ignore[attr-defined]
    export, recordings = ClarityExportClient(settings), ClarityRecordingsClient(settings)
    state.clarity_export = export  # type: ignore[attr-defined]
    state.clarity_recordings = recordings  # type: ignore[attr-defined]
    stack.push_async_callback(export.aclose)
    stack.push_async_callback(recordings.aclose)
