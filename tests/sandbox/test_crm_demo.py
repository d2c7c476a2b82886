"""`supportlens sandbox` serves both simulators with the printed credentials; the demo plugin wires them."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2

from supportlens_sandbox import crm_demo
from supportlens_sandbox.demo import PLUGINS, DemoContext
from supportlens_sandbox.dwolla import HAL
from tests.support.live import free_port_block


async def test_demo_plugin_points_the_app_at_both_simulators(tmp_path: Path) -> None:
    assert "supportlens_sandbox.crm_demo" in PLUGINS
    ctx = DemoContext(host="0.0.0.0", port=9000, data_dir=tmp_path)
    crm_demo.configure(ctx)
    assert ctx.env["SUPPORTLENS_HUBSPOT_BASE_URL"] == "http://127.0.0.1:9001"
    assert ctx.env["SUPPORTLENS_DWOLLA_BASE_URL"] == "http://127.0.0.1:9002"
    servers = {s.name: s for s in ctx.servers}
    assert servers["HubSpot sandbox"].port == 9001 and servers["Dwolla sandbox"].port == 9002
    hubspot = servers["HubSpot sandbox"].app()
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=hubspot), base_url="http://h") as client:
        r = await client.post(
            "/crm/v3/objects/contacts/search",
            json={"query": "jane@acme.io"},
            headers={"authorization": f"Bearer {ctx.env['SUPPORTLENS_HUBSPOT_TOKEN']}"},
        )
        assert r.json()["total"] == 1
    dwolla = servers["Dwolla sandbox"].app()
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=dwolla), base_url="http://d") as client:
        token = await client.post(
            "/token",
            auth=(ctx.env["SUPPORTLENS_DWOLLA_KEY"], ctx.env["SUPPORTLENS_DWOLLA_SECRET"]),
            data={"grant_type": "client_credentials"},
        )
        r = await client.get(
            "/customers",
            params={"email": "jane@acme.io"},
            headers={"authorization": f"Bearer {token.json()['access_token']}", "accept": HAL},
        )
        [jane] = r.json()["_embedded"]["customers"]
        transfers = await client.get(
            jane["_links"]["transfers"]["href"],
            headers={"authorization": f"Bearer {token.json()['access_token']}", "accept": HAL},
        )
    # Dates follow today in the demo; the people and ids are those of demo_world().
    assert jane["id"] == crm_demo.demo_world().customer("jane@acme.io").dwolla_id
    newest = transfers.json()["_embedded"]["transfers"][0]
    age = datetime.now(UTC) - datetime.fromisoformat(newest["created"].replace("Z", "+00:00"))
    assert newest["status"] == "failed" and timedelta(days=1) < age < timedelta(days=4)
    # The demo's Dwolla sends its webhooks to the app's endpoint, signed with the secret the app verifies.
    [subscription] = dwolla.state.webhooks.subscriptions.values()
    assert subscription.url == "http://127.0.0.1:9000/api/webhooks/dwolla"
    assert (
        subscription.secret == ctx.env["SUPPORTLENS_DWOLLA_WEBHOOK_SECRET"] and len(subscription.secret) >= 24
    )


async def test_sandbox_command_prints_working_urls_and_credentials() -> None:
    port = free_port_block(2)  # HubSpot on port, Dwolla on port + 1
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "supportlens.cli", "sandbox", "--port", str(port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "SUPPORTLENS_LOG_LEVEL": "WARNING"},
    )  # fmt: skip
    try:
        out = ""
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while "stop:" not in out:
            line = await asyncio.wait_for(proc.stdout.readline(), max(0.1, deadline - time.monotonic()))
            assert line, f"sandbox exited early:\n{out}"
            out += line.decode()
        values = dict(re.findall(r"(SUPPORTLENS_\w+)=(\S+)", out))
        assert values["SUPPORTLENS_HUBSPOT_BASE_URL"] == f"http://127.0.0.1:{port}"
        assert values["SUPPORTLENS_DWOLLA_BASE_URL"] == f"http://127.0.0.1:{port + 1}"
        async with httpx2.AsyncClient(timeout=5) as client:
            for _ in range(100):
                try:
                    r = await client.post(
                        f"{values['SUPPORTLENS_HUBSPOT_BASE_URL']}/crm/v3/objects/contacts/search",
                        json={"query": "Robert"},
                        headers={"authorization": f"Bearer {values['SUPPORTLENS_HUBSPOT_TOKEN']}"},
                    )
                    break
                except httpx2.TransportError:
                    await asyncio.sleep(0.1)
            assert (
                r.status_code == 200 and r.json()["results"][0]["properties"]["email"] == "robert@initech.com"
            )
            token = await client.post(
                f"{values['SUPPORTLENS_DWOLLA_BASE_URL']}/token",
                auth=(values["SUPPORTLENS_DWOLLA_KEY"], values["SUPPORTLENS_DWOLLA_SECRET"]),
                data={"grant_type": "client_credentials"},
            )
            assert token.status_code == 200 and token.json()["token_type"] == "bearer"
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def test_build_apps_and_description() -> None:
    hubspot, dwolla, world = crm_demo.build_apps(seed=7, latency_ms=25)
    assert hubspot.state.sandbox.knobs.latency_ms == 25 and dwolla.state.sandbox.knobs.latency_ms == 25
    lines = crm_demo.describe("0.0.0.0", 8100, world)
    assert "  SUPPORTLENS_HUBSPOT_BASE_URL=http://127.0.0.1:8100" in lines
    assert "  SUPPORTLENS_DWOLLA_BASE_URL=http://127.0.0.1:8101" in lines
    assert any("jane@acme.io" in line for line in lines)
    jane = world.customer("jane@acme.io").dwolla_id
    assert any(f'/__sandbox/transfer-failures -d \'{{"customerId": "{jane}"' in line for line in lines)
