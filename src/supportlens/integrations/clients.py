"""Builds the vendor clients once per app (at start-up, app.py) and closes them at shutdown."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass

from supportlens.config import Settings
from supportlens.integrations.clarity.export_api import ClarityExportClient
from supportlens.integrations.clarity.recordings import ClarityRecordingsClient
from supportlens.integrations.dwolla.client import DwollaClient
from supportlens.integrations.hubspot.client import HubSpotClient


@dataclass(frozen=True)
class VendorClients:
    hubspot: HubSpotClient
    dwolla: DwollaClient
    clarity_export: ClarityExportClient
    clarity_recordings: ClarityRecordingsClient


def build_clients(settings: Settings) -> tuple[HubSpotClient, DwollaClient]:
    return HubSpotClient(settings), DwollaClient(settings)


def open_vendor_clients(settings: Settings, stack: AsyncExitStack) -> VendorClients:
    """Every vendor client the app shares, closed with the stack."""
    hubspot, dwolla = build_clients(settings)
    clients = VendorClients(hubspot, dwolla, ClarityExportClient(settings), ClarityRecordingsClient(settings))
    for client in (clients.hubspot, clients.dwolla, clients.clarity_export, clients.clarity_recordings):
        stack.push_async_callback(client.aclose)
    return clients
