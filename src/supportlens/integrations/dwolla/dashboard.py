"""Links into Dwolla's own dashboard for a customer or a transfer, sandbox or production.

The dashboard is chosen by `SUPPORTLENS_DWOLLA_ENVIRONMENT`; left empty it follows the API base URL
(`api-sandbox.dwolla.com` is the sandbox). Ids are quoted into the path, so an id from an upstream
answer can never turn the link into another page.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from supportlens.config import Settings

SANDBOX_DASHBOARD = "https://dashboard-sandbox.dwolla.com"
PRODUCTION_DASHBOARD = "https://dashboard.dwolla.com"


def environment(settings: Settings) -> str:
    if settings.dwolla_environment:
        return settings.dwolla_environment
    return "sandbox" if "sandbox" in settings.dwolla_base_url else "production"


@dataclass(frozen=True)
class DwollaDashboard:
    host: str

    def customer_url(self, customer_id: str) -> str:
        return f"{self.host}/customers/{quote(customer_id, safe='')}"

    def transfer_url(self, transfer_id: str) -> str:
        return f"{self.host}/transfers/{quote(transfer_id, safe='')}"


def dashboard(settings: Settings) -> DwollaDashboard:
    return DwollaDashboard(SANDBOX_DASHBOARD if environment(settings) == "sandbox" else PRODUCTION_DASHBOARD)
