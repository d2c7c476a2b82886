"""The `supportlens demo` and `supportlens sandbox` commands, added to the product's command line
through the `supportlens.commands` entry point when this development package is installed."""

from __future__ import annotations

from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command()(demo)
    app.command()(sandbox)


def demo(
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    data_dir: Annotated[
        str, typer.Option(help="where the demo keeps its files and its embedded PostgreSQL's data")
    ] = ".supportlens-demo",
    fresh: Annotated[bool, typer.Option(help="start from an empty database")] = True,
) -> None:
    """The whole product on an embedded PostgreSQL with sandbox upstreams and seeded demo data."""
    from supportlens_sandbox.demo import run_demo

    run_demo(host=host, port=port, data_dir=data_dir, fresh=fresh)


def sandbox(
    port: Annotated[int, typer.Option(min=1, max=65534, help="HubSpot here, Dwolla on port + 1")] = 8100,
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    seed: Annotated[int, typer.Option(help="demo world seed")] = 7,
    latency_ms: Annotated[float, typer.Option(min=0, help="latency added to every call")] = 0.0,
) -> None:
    """Run only the HubSpot and Dwolla simulators (demo world), printing their URLs and credentials."""
    from supportlens_sandbox.crm_demo import run_sandbox

    run_sandbox(host=host, port=port, seed=seed, latency_ms=latency_ms)
