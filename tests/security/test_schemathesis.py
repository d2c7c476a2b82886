"""Schemathesis against the app's own OpenAPI: generated requests to every documented operation, no 5xx."""

from __future__ import annotations

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase

from supportlens.app import create_app
from supportlens.auth import service
from tests.support.agents import make_agent
from tests.support.live import LiveServer

MAX_EXAMPLES = 12


@pytest.fixture
async def token_and_server(settings, sessionmaker, engine):
    admin = await make_agent(sessionmaker, "admin", email="fuzz-admin@example.com")
    async with sessionmaker() as db:
        token = await service.create_api_token(db, await service.get_agent_by_email(db, admin.email))
    with LiveServer(create_app(settings)) as server:
        yield token, server


def test_no_operation_answers_5xx(token_and_server):
    token, server = token_and_server
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 5
    failures: list[str] = []

    def run(op):
        strategy = op.as_strategy()

        @hypothesis.given(case=strategy)
        @hypothesis.settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            resp = case.call(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=15)
            if resp.status_code >= 500:
                failures.append(
                    f"{op.method.upper()} {op.path} -> {resp.status_code}: {case.as_curl_command()}"
                )

        check()

    for op in operations:
        run(op)
    assert not failures, "\n".join(failures[:20])
