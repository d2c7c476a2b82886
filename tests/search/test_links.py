"""Links out of the search panels into HubSpot and Dwolla, with a copy button on every id and link."""

from __future__ import annotations

import re
from typing import Any

from pydantic import SecretStr

from supportlens.config import Settings
from supportlens.integrations.dwolla.dashboard import dashboard
from supportlens.search import links
from supportlens_sandbox.hubspot.app import HUBSPOT_PORTAL_ID

JANE_DWOLLA = "5b29279d-6359-4c87-a318-e09095532733"


async def test_hubspot_records_link_to_the_portal_and_copy(signed_in) -> None:
    agent = await signed_in("agent")
    html = (await agent.client.get("/search/panel/hubspot", params={"q": "jane@acme.io"})).text
    contact = re.search(r'data-contact-id="([^"]+)"', html)
    assert contact
    base = f"https://app.hubspot.com/contacts/{HUBSPOT_PORTAL_ID}/record"
    assert f'href="{base}/0-1/{contact.group(1)}"' in html
    assert re.search(rf'href="{base}/0-3/\d+"', html), "a deal links to its record"
    assert re.search(rf'href="{base}/0-5/\d+"', html), "a ticket links to its record"
    copied = set(re.findall(r'data-copy="([^"]+)"', html))
    assert {contact.group(1), JANE_DWOLLA, f"{base}/0-1/{contact.group(1)}"} <= copied
    assert all('rel="noopener noreferrer"' in a for a in re.findall(r"<a [^>]*hubspot\.com[^>]*>", html))


async def test_dwolla_customer_and_transfers_link_to_the_dashboard(signed_in) -> None:
    agent = await signed_in("agent")
    html = (await agent.client.get("/search/panel/dwolla", params={"q": "jane@acme.io"})).text
    assert f'href="https://dashboard.dwolla.com/customers/{JANE_DWOLLA}"' in html
    transfers = re.findall(r'href="https://dashboard\.dwolla\.com/transfers/([^"]+)"', html)
    rows = re.findall(r'<tr class="transfer-[a-z]+" id="transfer-([^"]+)"', html)
    assert rows and transfers == rows
    copied = re.findall(r'data-copy="([^"]+)"', html)
    assert JANE_DWOLLA in copied and f"https://dashboard.dwolla.com/transfers/{rows[0]}" in copied


def test_dashboard_host_by_configuration() -> None:
    base = Settings(dwolla_base_url="https://api.dwolla.com")
    assert dashboard(base).host == "https://dashboard.dwolla.com"
    assert dashboard(Settings(dwolla_base_url="https://api-sandbox.dwolla.com")).host == (
        "https://dashboard-sandbox.dwolla.com"
    )
    forced = Settings(dwolla_base_url="https://api.dwolla.com", dwolla_environment="sandbox")
    assert (
        dashboard(forced).customer_url("a/../b?c")
        == "https://dashboard-sandbox.dwolla.com/customers/a%2F..%2Fb%3Fc"
    )


async def test_hubspot_account_failing_leaves_links_out_and_is_not_retried_at_once() -> None:
    calls = 0

    class Broken:
        async def account(self) -> Any:
            nonlocal calls
            calls += 1
            raise RuntimeError("account-info refused")

    settings = Settings(hubspot_token=SecretStr("pat"))
    lookup = links.AccountLookup()
    client: Any = Broken()
    assert await links.hubspot_account(client, settings, lookup) is None
    assert await links.hubspot_account(client, settings, lookup) is None
    assert calls == 1
