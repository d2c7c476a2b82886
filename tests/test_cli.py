"""The command line: clear messages for bad input, never a traceback."""

from __future__ import annotations

import asyncio

import pytest
from typer.testing import CliRunner

from supportlens.cli import app
from supportlens.config import get_settings


def invoke(args):
    # The CLI runs its own event loop, so call it from a thread, away from the test's loop.
    return asyncio.to_thread(CliRunner().invoke, app, args)


@pytest.fixture
def cli_env(monkeypatch, database_url):
    monkeypatch.setenv("SUPPORTLENS_DATABASE_URL", database_url)
    monkeypatch.setenv("SUPPORTLENS_SECRET_KEY", "test-secret-key-not-for-production")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def test_agents_create_and_duplicate(cli_env, engine):
    ok = await invoke(
        ["agents", "create", "--email", "New.Agent@Example.com", "--role", "viewer", "--api-token"]
    )
    assert ok.exit_code == 0, ok.output
    assert "created agent new.agent@example.com with role viewer" in ok.output
    assert "slt_" in ok.output
    dup = await invoke(["agents", "create", "--email", "new.agent@example.com", "--role", "viewer"])
    assert dup.exit_code == 2 and "already exists" in dup.output and "Traceback" not in dup.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--email", "not-an-email", "--role", "agent"], "email:"),
        (["--email", "a@example.com", "--role", "superuser"], "role: must be one of admin, agent, viewer"),
        (
            ["--email", "b@example.com", "--role", "agent", "--password", "short"],
            "password: must be at least 12",
        ),
    ],
)
async def test_agents_create_bad_input(cli_env, engine, args, message):
    result = await invoke(["agents", "create", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_bad_database_url_is_a_clear_message(monkeypatch):
    monkeypatch.setenv("SUPPORTLENS_DATABASE_URL", "mysql://nope")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["db", "upgrade"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "SUPPORTLENS_DATABASE_URL" in result.output and "Traceback" not in result.output


async def test_unreachable_database_is_a_clear_message(monkeypatch):
    monkeypatch.setenv("SUPPORTLENS_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:1/none")
    get_settings.cache_clear()
    try:
        result = await invoke(["db", "upgrade"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "cannot use the database" in result.output and "Traceback" not in result.output


async def test_db_upgrade(cli_env):
    result = await invoke(["db", "upgrade"])
    assert result.exit_code == 0 and "is at head" in result.output
