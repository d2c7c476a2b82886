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
sites_app = typer.Typer(help="Websites that send sessions (site keys).", no_args_is_help=True)
app.add_typer(sites_app, name="sites")
mapping_app = typer.Typer(help="Session-to-customer links.", no_args_is_help=True)
app.add_typer(mapping_app, name="mapping")


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
    """Run a coroutine against the database, turning connection problems into one clear line.

    With no database configured, against the embedded server of `supportlens serve` (joined while
    serve runs, else started for this command only)."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    from supportlens.db import embedded

    try:
        with embedded.configured_or_embedded(
            settings.database_url, settings.embedded_postgres_dir, lambda line: typer.echo(line, err=True)
        ) as url:
            settings.database_url = url  # the coroutine's closures hold this settings object
            return asyncio.run(coro_factory())
    except (OperationalError, DBAPIError, OSError) as exc:
        where = redact(settings.database_url) if settings.database_url else "the embedded PostgreSQL"
        fail(f"cannot use the database at {where}: {str(exc).splitlines()[0][:200]}")
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
    run_db(lambda: migrate.upgrade_async(settings.require_database_url(), revision), settings)
    typer.echo(f"database at {redact(settings.require_database_url())} is at {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: str = typer.Argument(..., help="target revision, e.g. base")) -> None:
    """Revert migrations down to REVISION."""
    from supportlens.db import migrate

    settings = load_settings()
    run_db(lambda: migrate.downgrade_async(settings.require_database_url(), revision), settings)
    typer.echo(f"database at {redact(settings.require_database_url())} is at {revision}")


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


@sites_app.command("create")
def sites_create(
    name: Annotated[str, typer.Option(help="the site's name")],
    origin: Annotated[list[str], typer.Option(help="allowed origin, e.g. https://shop.example (repeatable)")],
    clarity_project: Annotated[str, typer.Option(help="the site's Clarity project id")] = "",
    require_consent: Annotated[bool, typer.Option(help="send nothing until the visitor consents")] = False,
) -> None:
    """Create a site and print its public site key (shown once; only its hash is stored)."""
    from supportlens.capture import sites
    from supportlens.db.engine import make_engine, make_sessionmaker

    settings = load_settings()

    async def go() -> tuple[str, str]:
        engine = make_engine(settings)
        try:
            async with make_sessionmaker(engine)() as db:
                site, key = await sites.create_site(
                    db,
                    name=name,
                    origins=origin,
                    clarity_project_id=clarity_project,
                    require_consent=require_consent,
                )
                from supportlens.audit import service as audit

                await audit.record(
                    db,
                    "site_created",
                    actor_email="cli",
                    target_type="site",
                    target=str(site.id),
                    detail={"name": site.name, "origins": site.allowed_origins, "prefix": site.key_prefix},
                )
                return str(site.id), key
        finally:
            await engine.dispose()

    try:
        site_id, key = run_db(go, settings)
    except sites.SiteError as exc:
        fail(f"{exc.field}: {exc.message}")
        return
    typer.echo(f"created site {name} ({site_id})")
    typer.echo("site key (public, shown once; put it in data-site-key):")
    typer.echo(key)


@sites_app.command("list")
def sites_list() -> None:
    """List sites: key prefix, allowed origins, status."""
    from supportlens.capture import sites
    from supportlens.db.engine import make_engine, make_sessionmaker

    settings = load_settings()

    async def go() -> list[str]:
        engine = make_engine(settings)
        try:
            async with make_sessionmaker(engine)() as db:
                return [
                    f"{s.key_prefix}…  {'revoked' if s.revoked_at else 'active '}  {s.name}  "
                    f"{' '.join(s.allowed_origins)}"
                    for s in await sites.list_sites(db)
                ]
        finally:
            await engine.dispose()

    for line in run_db(go, settings):
        typer.echo(line)


@mapping_app.command("report")
def mapping_report(
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """How right the automatic links are, judged by the agents' manual decisions (per method and band)."""
    import json

    from supportlens.db.engine import make_engine, make_sessionmaker
    from supportlens.mapping import calibration
    from supportlens.mapping.labels import calibration_report

    settings = load_settings()

    async def go() -> calibration.CalibrationReport:
        engine = make_engine(settings)
        try:
            async with make_sessionmaker(engine)() as db:
                return await calibration_report(
                    db, threshold=settings.mapping_min_confidence, possible_floor=settings.possible_floor
                )
        finally:
            await engine.dispose()

    result = run_db(go, settings)
    if as_json:
        typer.echo(json.dumps(calibration.as_json(result), indent=2))
    else:
        for line in calibration.as_lines(result):
            typer.echo(line)


@sites_app.command("revoke")
def sites_revoke(
    key_prefix: Annotated[str, typer.Argument(help="the key prefix shown by `sites list`")],
) -> None:
    """Revoke a site's key: its events are refused from then on."""
    from supportlens.capture import sites
    from supportlens.db.engine import make_engine, make_sessionmaker

    settings = load_settings()

    async def go() -> bool:
        engine = make_engine(settings)
        try:
            async with make_sessionmaker(engine)() as db:
                site = await sites.revoke_by_prefix(db, key_prefix.rstrip("…"))
                if site is not None:
                    from supportlens.audit import service as audit

                    await audit.record(
                        db, "site_revoked", actor_email="cli", target_type="site", target=str(site.id)
                    )
                return site is not None
        finally:
            await engine.dispose()

    if not run_db(go, settings):
        fail(f"no site with key prefix {key_prefix}")
    typer.echo(f"revoked {key_prefix}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="worker processes")] = 1,
) -> None:
    """Run SupportLens for production; every setting comes from SUPPORTLENS_* or .env."""
    import os

    from supportlens.db import embedded

    os.environ.setdefault("SUPPORTLENS_GC_FREEZE", "true")  # read by every worker's settings
    settings = load_settings()
    metrics_dir = _multiprocess_metrics_dir() if workers > 1 else None
    try:
        with embedded.configured_or_embedded(
            settings.database_url, settings.embedded_postgres_dir, typer.echo
        ):
            _run_server(settings, host, port, workers)
    finally:
        if metrics_dir is not None:
            import shutil

            shutil.rmtree(metrics_dir, ignore_errors=True)


@app.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(min=1, max=64, help="jobs run at once")] = None,
    metrics_port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="serve /metrics (mapping lag) on this port")
    ] = None,
    metrics_host: Annotated[str, typer.Option(help="address for --metrics-port")] = "127.0.0.1",
) -> None:
    """Run a task-queue worker (mapping, periodic tasks) apart from the web processes, until stopped."""
    from supportlens.db import embedded
    from supportlens.tasks.worker import run_dedicated_worker

    settings = load_settings()
    concurrency = concurrency or settings.worker_concurrency
    # With no database configured: the embedded server of `supportlens serve` (joined while it runs).
    with embedded.configured_or_embedded(
        settings.database_url, settings.embedded_postgres_dir, lambda line: typer.echo(line, err=True)
    ) as url:
        settings.database_url = url
        asyncio.run(
            run_dedicated_worker(
                settings, concurrency=concurrency, metrics_port=metrics_port, metrics_host=metrics_host
            )
        )


def _multiprocess_metrics_dir() -> str | None:
    """Workers write their metrics to files in PROMETHEUS_MULTIPROC_DIR so that /metrics, answered by
    any one worker, adds up all of them. Made here (fresh, removed at exit) unless already set."""
    import os
    import tempfile

    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    path = tempfile.mkdtemp(prefix="supportlens-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


def _run_server(settings: Settings, host: str, port: int, workers: int) -> None:
    from supportlens.logging import configure_logging
    from supportlens.serving import Server, check_port

    configure_logging(settings.log_level, settings.log_json)  # the arbiter's lines too

    try:
        check_port(host, port)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror}")
    try:
        server = Server(
            host=host,
            port=port,
            workers=workers,
            forwarded_allow_ips=settings.forwarded_allow_ips,
            log_level=settings.log_level,
        )
    except ValueError as exc:  # an entry that is neither an address nor a network
        fail(f"SUPPORTLENS_FORWARDED_ALLOW_IPS: {exc}")
        return
    server.run()


def add_plugin_commands() -> None:
    """Commands other installed packages add (`supportlens.commands` entry points): the development
    package `supportlens-sandbox` adds `demo` and `sandbox`; a production install has neither."""
    from importlib.metadata import entry_points

    for entry in entry_points(group="supportlens.commands"):
        entry.load()(app)


def main() -> None:
    add_plugin_commands()
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
