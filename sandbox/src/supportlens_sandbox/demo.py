"""`supportlens demo`: the app on an embedded PostgreSQL, sandbox upstreams, demo data and a printed login.

The database is SUPPORTLENS_DATABASE_URL when the environment sets it; otherwise a private
PostgreSQL (db/embedded.py) with its data in `<data dir>/postgres`, stopped when the demo exits.
`--fresh` (the default) drops and recreates the embedded server's database, never a configured one.

Plugins (see PLUGINS) add simulators, extra servers (the demo shop) and seed data. Each is a
function `configure(ctx)` that may set settings in `ctx.env`, append servers to `ctx.servers`
and async seeders to `ctx.seeders`, and lines to print to `ctx.notes`.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

DEMO_ADMIN_EMAIL = "admin@supportlens.demo"
DEMO_AGENT_EMAIL = "agent@supportlens.demo"
DEMO_VIEWER_EMAIL = "viewer@supportlens.demo"

Seeder = Callable[[Any, "DemoContext"], Awaitable[None]]


@dataclass
class DemoServer:
    name: str
    app: Any  # an ASGI app, or a zero-argument factory returning one (built after env is set)
    port: int
    host: str = "127.0.0.1"


@dataclass
class DemoContext:
    host: str
    port: int
    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    servers: list[DemoServer] = field(default_factory=list)
    seeders: list[Seeder] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    logins: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


def _plugins() -> list[Callable[[DemoContext], None]]:
    """Each domain's demo wiring. Imported lazily so the foundation runs without them."""
    import importlib

    found = []
    for module_name in PLUGINS:
        module = importlib.import_module(module_name)
        found.append(module.configure)
    return found


# Modules with a `configure(ctx: DemoContext)` function, in order.
PLUGINS: list[str] = [
    "supportlens_sandbox.crm_demo",
    "supportlens_sandbox.clarity_demo",
    "supportlens_sandbox.sessions_demo",
    "supportlens_sandbox.payment_visit",
]


def busy_ports(host: str, ports: list[int]) -> list[int]:
    """The ports a server could not listen on now (bound the way uvicorn binds)."""
    busy = []
    for port in ports:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError:
                busy.append(port)
    return busy


def prepare(host: str, port: int, data_dir: str, fresh: bool, stack: ExitStack) -> DemoContext:
    """Set up the environment, database and seed data; returns what to serve. The embedded database
    runs until `stack` closes."""
    directory = Path(data_dir).resolve()
    database_dir = directory / "postgres"
    if fresh and directory.exists():
        # Everything but the embedded server's files: its database is dropped and made anew below,
        # which saves the initdb of a new data directory.
        for path in directory.iterdir():
            if path == database_dir:
                continue
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    directory.mkdir(parents=True, exist_ok=True)
    secret_file = directory / "secret_key"
    if not secret_file.exists():
        secret_file.write_text(secrets.token_urlsafe(32))
        secret_file.chmod(0o600)
    ctx = DemoContext(host=host, port=port, data_dir=directory)
    ctx.env.update(
        {
            "SUPPORTLENS_ENVIRONMENT": "demo",
            "SUPPORTLENS_SECRET_KEY": secret_file.read_text().strip(),
            "SUPPORTLENS_BASE_URL": ctx.base_url,
            "SUPPORTLENS_LOG_JSON": "false",
            "SUPPORTLENS_LOG_LEVEL": os.environ.get("SUPPORTLENS_LOG_LEVEL", "WARNING"),
        }
    )
    for configure in _plugins():
        configure(ctx)
    busy = busy_ports(host, [port, *(server.port for server in ctx.servers)])
    if busy:
        # Said now, before seeding, rather than as a bind error from one of five servers later.
        last = max([port, *(server.port for server in ctx.servers)])
        typer.secho(
            f"error: port {', '.join(map(str, busy))} on {host} is in use; "
            f"the demo needs ports {port}-{last} (choose others with --port)",
            err=True,
            fg=typer.colors.RED,
        )
        raise typer.Exit(2)
    from supportlens.db import embedded

    ctx.env["SUPPORTLENS_DATABASE_URL"] = stack.enter_context(
        embedded.configured_or_embedded(
            os.environ.get("SUPPORTLENS_DATABASE_URL"), database_dir, ctx.notes.append, fresh_database=fresh
        )
    )
    os.environ.update(ctx.env)

    from supportlens.config import get_settings

    get_settings.cache_clear()
    asyncio.run(_migrate_and_seed(ctx))
    return ctx


async def _migrate_and_seed(ctx: DemoContext) -> None:
    from supportlens.auth import service
    from supportlens.config import get_settings
    from supportlens.db import migrate
    from supportlens.db.engine import make_engine, make_sessionmaker

    settings = get_settings()
    await migrate.upgrade_async(settings.require_database_url())
    engine = make_engine(settings)
    try:
        async with make_sessionmaker(engine)() as db:
            fixed = os.environ.get("SUPPORTLENS_DEMO_PASSWORD")
            for email, role, name in (
                (DEMO_ADMIN_EMAIL, "admin", "Ada Admin"),
                (DEMO_AGENT_EMAIL, "agent", "Sam Support"),
                (DEMO_VIEWER_EMAIL, "viewer", "Vic Viewer"),
            ):
                if await service.get_agent_by_email(db, email) is None:
                    password = fixed or secrets.token_urlsafe(12)
                    await service.create_agent(db, email=email, role=role, name=name, password=password)
                    ctx.logins[email] = password
            for seeder in ctx.seeders:
                await seeder(db, ctx)
    finally:
        await engine.dispose()


async def _serve_all(ctx: DemoContext) -> None:
    import uvicorn

    from supportlens.app import create_app

    configs = [
        uvicorn.Config(
            create_app(), host=ctx.host, port=ctx.port, log_config=None, access_log=False, proxy_headers=False
        )
    ]
    for server in ctx.servers:
        app = server.app() if callable(server.app) and not hasattr(server.app, "router") else server.app
        configs.append(
            uvicorn.Config(app, host=server.host, port=server.port, log_config=None, access_log=False)
        )
    await asyncio.gather(*(uvicorn.Server(c).serve() for c in configs))


def run_demo(host: str, port: int, data_dir: str, fresh: bool) -> None:
    with ExitStack() as stack:
        ctx = prepare(host, port, data_dir, fresh, stack)
        typer.secho("\nSupportLens demo is starting", bold=True)
        typer.echo(f"  open:     {ctx.base_url}/login")
        for email, password in ctx.logins.items():
            typer.echo(f"  login:    {email}  /  {password}")
        for note in ctx.notes:
            typer.echo(f"  {note}")
        typer.echo("  stop:     Ctrl+C\n")
        asyncio.run(_serve_all(ctx))
