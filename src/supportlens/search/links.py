"""Links out of the search page into the vendors' own pages: HubSpot records and Dwolla's dashboard.

HubSpot's record pages need the account's portal id (`GET /account-info/v3/details`), which the client
reads once per token. When that call fails the panel shows its records without links, and the call is
not tried again for FAILED_RETRY_SECONDS, so a broken account endpoint does not slow every search.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import structlog

from supportlens.config import Settings
from supportlens.integrations.dwolla.dashboard import DwollaDashboard, dashboard
from supportlens.integrations.hubspot.client import HubSpotClient
from supportlens.integrations.hubspot.models import HubSpotAccount

log = structlog.get_logger(__name__)

ACCOUNT_DEADLINE_SECONDS = 2.0
FAILED_RETRY_SECONDS = 300.0


@dataclass
class AccountLookup:
    """When HubSpot's account endpoint last failed: one per app, so a failure pauses the lookups of
    every search for FAILED_RETRY_SECONDS."""

    failed_at: float | None = None


def new_account_lookup(_settings: Settings) -> AccountLookup:
    return AccountLookup()


async def hubspot_account(
    client: HubSpotClient | None, settings: Settings, lookup: AccountLookup
) -> HubSpotAccount | None:
    """The HubSpot account behind the token (cached by the client), or None when it cannot be read."""
    if client is None or not settings.hubspot_token.get_secret_value():
        return None
    if lookup.failed_at is not None and time.monotonic() - lookup.failed_at < FAILED_RETRY_SECONDS:
        return None
    try:
        account: HubSpotAccount = await asyncio.wait_for(client.account(), ACCOUNT_DEADLINE_SECONDS)
    except Exception as exc:  # links are a convenience: the panel shows its records without them
        lookup.failed_at = time.monotonic()
        log.warning("hubspot.account_unavailable", error=type(exc).__name__)
        return None
    lookup.failed_at = None
    return account


def dwolla_dashboard(settings: Settings) -> DwollaDashboard:
    return dashboard(settings)
