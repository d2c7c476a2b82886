"""HubSpot and Dwolla simulators for `supportlens demo` and `supportlens sandbox`.

Ports: HubSpot on the given port, Dwolla on port + 1 (`supportlens sandbox --port 8100`: HubSpot at
:8100, Dwolla at :8101). In `supportlens demo` the app runs on ctx.port, HubSpot on ctx.port + 1 and
Dwolla on ctx.port + 2, and the app's SUPPORTLENS_HUBSPOT_* / SUPPORTLENS_DWOLLA_* settings point at
them. Each simulator has its knobs at <base>/__sandbox/knobs (see supportlens_sandbox.knobs).
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from supportlens_sandbox.dwolla import DWOLLA_KEY, DWOLLA_SECRET, create_dwolla_app
from supportlens_sandbox.hubspot import HUBSPOT_READONLY_TOKEN, HUBSPOT_TOKEN, create_hubspot_app
from supportlens_sandbox.knobs import Knobs
from supportlens_sandbox.world import World, demo_world

if TYPE_CHECKING:
    from supportlens_sandbox.demo import DemoContext

HUBSPOT_OFFSET = 1
DWOLLA_OFFSET = 2


def today_world(seed: int = 7) -> World:
    """The demo world with its dates relative to today (same people and ids as `demo_world()`)."""
    today = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    return demo_world(seed, now=today)


def _client_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104 - mapping, not binding


def configure(ctx: DemoContext) -> None:
    from supportlens_sandbox.demo import DemoServer

    world = today_world()
    host = _client_host(ctx.host)
    hubspot_url = f"http://{host}:{ctx.port + HUBSPOT_OFFSET}"
    dwolla_url = f"http://{host}:{ctx.port + DWOLLA_OFFSET}"
    ctx.env.update(
        {
            "SUPPORTLENS_HUBSPOT_BASE_URL": hubspot_url,
            "SUPPORTLENS_HUBSPOT_TOKEN": HUBSPOT_TOKEN,
            "SUPPORTLENS_DWOLLA_BASE_URL": dwolla_url,
            "SUPPORTLENS_DWOLLA_KEY": DWOLLA_KEY,
            "SUPPORTLENS_DWOLLA_SECRET": DWOLLA_SECRET,
        }
    )
    ctx.servers.append(
        DemoServer("HubSpot sandbox", lambda: create_hubspot_app(world), ctx.port + HUBSPOT_OFFSET, ctx.host)
    )
    # The demo's Dwolla is subscribed to the app's webhook endpoint from the start, with a secret made
    # for this run, so a transfer failed in the simulator reaches Needs attention with no setup.
    webhook_secret = secrets.token_urlsafe(24)
    webhook_url = f"http://{host}:{ctx.port}/api/webhooks/dwolla"
    ctx.env["SUPPORTLENS_DWOLLA_WEBHOOK_SECRET"] = webhook_secret

    def dwolla_app() -> Any:
        app = create_dwolla_app(world)
        app.state.webhooks.subscribe(webhook_url, webhook_secret)
        return app

    ctx.servers.append(DemoServer("Dwolla sandbox", dwolla_app, ctx.port + DWOLLA_OFFSET, ctx.host))
    ctx.notes.append(f"hubspot:  {hubspot_url}  (sandbox; knobs at /__sandbox/knobs)")
    ctx.notes.append(f"dwolla:   {dwolla_url}  (sandbox; knobs at /__sandbox/knobs)")
    ctx.notes.append("try:      jane@acme.io, 'Robert Chen', '(415) 555-0101', 'Acme' ")
    jane_id = world.customer("jane@acme.io").dwolla_id
    ctx.notes.append(
        f"payments: fail one (it lands in Needs attention): curl -X POST "
        f"{dwolla_url}/__sandbox/transfer-failures -H 'Content-Type: application/json' "
        f"""-d '{{"customerId": "{jane_id}"}}'"""
    )


def describe(host: str, port: int, world: World) -> list[str]:
    hubspot_url = f"http://{_client_host(host)}:{port}"
    dwolla_url = f"http://{_client_host(host)}:{port + 1}"
    headline = ", ".join(c.email for c in world.customers[:5])
    return [
        f"HubSpot  {hubspot_url}",
        f"  SUPPORTLENS_HUBSPOT_BASE_URL={hubspot_url}",
        f"  SUPPORTLENS_HUBSPOT_TOKEN={HUBSPOT_TOKEN}",
        f"Dwolla   {dwolla_url}",
        f"  SUPPORTLENS_DWOLLA_BASE_URL={dwolla_url}",
        f"  SUPPORTLENS_DWOLLA_KEY={DWOLLA_KEY}",
        f"  SUPPORTLENS_DWOLLA_SECRET={DWOLLA_SECRET}",
        f"Knobs    POST {hubspot_url}/__sandbox/knobs  |  POST {dwolla_url}/__sandbox/knobs",
        f"         e.g. curl -X POST {dwolla_url}/__sandbox/knobs -d "
        + """'{"latency_ms": 150, "error_rate": 0.1}'""",
        f"World    {len(world.customers)} customers, {len(world.companies)} companies; try {headline}",
        f"Webhooks subscribe at POST {dwolla_url}/webhook-subscriptions, then fail a transfer: curl -X POST "
        f"{dwolla_url}/__sandbox/transfer-failures -d "
        + f"""'{{"customerId": "{_jane_dwolla_id(world)}", "code": "R01"}}'""",
        f"Scopes   SUPPORTLENS_HUBSPOT_TOKEN={HUBSPOT_READONLY_TOKEN} has no write scope (MISSING_SCOPES)",
    ]


def _jane_dwolla_id(world: World) -> str:
    dwolla_ids = [c.dwolla_id for c in world.customers if c.dwolla_id]
    return next(
        (c.dwolla_id for c in world.customers if c.email == "jane@acme.io" and c.dwolla_id), dwolla_ids[0]
    )


def build_apps(seed: int = 7, latency_ms: float = 0.0) -> tuple[Any, Any, World]:
    world = today_world(seed)
    hubspot = create_hubspot_app(world, Knobs(latency_ms=latency_ms))
    dwolla = create_dwolla_app(world, Knobs(latency_ms=latency_ms))
    return hubspot, dwolla, world


def run_sandbox(host: str, port: int, seed: int = 7, latency_ms: float = 0.0) -> None:
    """Serve the HubSpot simulator on `port` and the Dwolla simulator on `port + 1` until Ctrl+C."""
    import typer
    import uvicorn

    hubspot, dwolla, world = build_apps(seed, latency_ms)
    typer.secho("SupportLens sandbox upstreams", bold=True)
    for line in describe(host, port, world):
        typer.echo(f"  {line}")
    typer.echo("  stop:    Ctrl+C\n")
    servers = [
        uvicorn.Server(uvicorn.Config(app, host=host, port=p, log_config=None, access_log=False))
        for app, p in ((hubspot, port), (dwolla, port + 1))
    ]

    async def serve() -> None:
        await asyncio.gather(*(server.serve() for server in servers))

    asyncio.run(serve())
