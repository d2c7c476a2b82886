"""The `supportlens` command line."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

import typer

from supportlens.config import Settings, get_settings

T = TypeVar("T")

app = typer.Typer(
    help="SupportLens: customer context for support agents.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database migrations.", no_args_is_help=True)
agents_app = typer.Typer(help="Agent accounts.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(agents_app, name="agents")


def fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def load_settings() -> Settings:
    from pydantic import ValidationError

    try:
        return get_settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        field = "SUPPORTLENS_" + str(err["loc"][0]).upper() if err.get("loc") else "settings"
        fail(f"{field}: {err['msg']}")
        raise  # unreachable


def run_db(coro_factory: Callable[[], Coroutine[Any, Any, T]], settings: Settings) -> T:
    """Run a coroutine against the database, turning connection problems into one clear line."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    try:
        return asyncio.run(coro_factory())
    except (OperationalError, DBAPIError, OSError) as exc:
        fail(f"cannot use the database at {redact(settings.database_url)}: {str(exc).splitlines()[0][:200]}")
        raise  # unreachable: fail() exits


def redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<invalid url>"


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    from supportlens.db import migrate

    settings = load_settings()
    run_db(lambda: migrate.upgrade_async(settings.database_url, revision), settings)
    typer.echo(f"database at {redact(settings.database_url)} is at {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument(..., help="target revision, e.g. base")) -> None:
    """Revert migrations down to REVISION."""
    from supportlens.db import migrate

    settings = load_settings()
    run_db(lambda: migrate.downgrade_async(settings.database_url, revision), settings)
    typer.echo(f"database at {redact(settings.database_url)} is at {revision}")


@agents_app.command("create")
def agents_create(
    email: Annotated[str, typer.Option(help="the agent's e-mail (their login)")],
    role: Annotated[str, typer.Option(help="admin, agent or viewer")] = "agent",
    name: Annotated[str, typer.Option(help="display name")] = "",
    password: Annotated[
        str | None, typer.Option(help="password; omit for SSO-only or a generated one")
    ] = None,
    generate_password: Annotated[
        bool, typer.Option("--generate-password", help="print a random password")
    ] = False,
    api_token: Annotated[
        bool, typer.Option("--api-token", help="also create an API token and print it once")
    ] = False,
) -> None:
    """Create an agent account."""
    import secrets

    from supportlens.auth import service
    from supportlens.db.engine import make_engine, make_sessionmaker

    settings = load_settings()
    if generate_password:
        password = secrets.token_urlsafe(12)

    async def go() -> tuple[str | None, str | None]:
        engine = make_engine(settings)
        try:
            async with make_sessionmaker(engine)() as db:
                agent = await service.create_agent(db, email=email, role=role, name=name, password=password)
                token = await service.create_api_token(db, agent) if api_token else None
                from supportlens.audit import service as audit

                await audit.record(
                    db,
                    "agent_created",
                    actor_email="cli",
                    target_type="agent",
                    target=str(agent.id),
                    detail={"role": agent.role},
                )
                return agent.email, token
        finally:
            await engine.dispose()

    try:
        created, token = run_db(go, settings)
    except service.AgentError as exc:
        fail(f"{exc.field}: {exc.message}")
        return
    typer.echo(f"created agent {created} with role {role}")
    if generate_password:
        typer.echo(f"password: {password}")
    if token:
        typer.echo("API token (shown once, store it now):")
        typer.echo(token)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="worker processes")] = 1,
) -> None:
    """Run SupportLens for production; every setting comes from SUPPORTLENS_* or .env."""
    import uvicorn

    settings = load_settings()
    uvicorn.run(
        "supportlens.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        server_header=False,
        log_config=None,
        access_log=False,
    )


@app.command()
def demo(
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    data_dir: Annotated[str, typer.Option(help="where the demo keeps its SQLite file")] = ".supportlens-demo",
    fresh: Annotated[bool, typer.Option(help="start from an empty database")] = True,
) -> None:
    """The whole product on embedded SQLite with sandbox upstreams and seeded demo data."""
    from supportlens.sandbox.demo import run_demo

    run_demo(host=host, port=port, data_dir=data_dir, fresh=fresh)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
