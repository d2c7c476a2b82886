"""Links out of the search page into the vendors' own pages: HubSpot records and Dwolla's dashboard.

HubSpot's record pages need the account's portal id (`GET /account-info/v3/details`), which the client
reads once per token. When that call fails the panel shows its records without links, and the call is
not tried again for FAILED_RETRY_SECONDS, so a broken account endpoint does not slow every search.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

from supportlens.integrations.dwolla.dashboard import DwollaDashboard, dashboard
from supportlens.integrations.hubspot.models import HubSpotAccount

log = structlog.get_logger(__name__)

ACCOUNT_DEADLINE_SECONDS = 2.0
FAILED_RETRY_SECONDS = 300.0


async def hubspot_account(app: Any) -> HubSpotAccount | None:
    """The HubSpot account behind the token (cached by the client), or None when it cannot be read."""
    state = app.state
    client = getattr(state, "hubspot", None)
    if client is None or not state.settings.hubspot_token.get_secret_value():
        return None
    failed_at = getattr(state, "hubspot_account_failed_at", None)
    if failed_at is not None and time.monotonic() - failed_at < FAILED_RETRY_SECONDS:
        return None
    try:
        account: HubSpotAccount = await asyncio.wait_for(client.account(), ACCOUNT_DEADLINE_SECONDS)
    except Exception as exc:  # links are a convenience: the panel shows its records without them
        state.hubspot_account_failed_at = time.monotonic()
        log.warning("hubspot.account_unavailable", error=type(exc).__name__)
        return None
    state.hubspot_account_failed_at = None
    return account


def dwolla_dashboard(app: Any) -> DwollaDashboard:
    return dashboard(app.state.settings)
