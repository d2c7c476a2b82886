"""Schemathesis against the app's own OpenAPI: generated requests to every documented operation, no 5xx
(but the 502 problem details of a route that calls a vendor while the agent waits: none is reachable here).

Extended with the extreme-value strategies (tests/security/extremes.py): `format: date` and
`format: date-time` values drawn from the ends of the calendar with ±14:00 offsets, and in each case up
to two path or query parameters replaced by an extreme value of any kind (past bigint, huge numbers,
cursors decoding to the ends of time, long text), whatever the schema says they hold. Half the cases of
an operation on a session or a customer use a real one, so handlers get past their 404.
"""

from __future__ import annotations

from typing import Any

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis.specs.openapi.formats import unregister_string_format

from supportlens.app import create_app
from supportlens.auth import service
from tests.investigation.seed import seed_checkout_session
from tests.security.extremes import extreme_days, extreme_instants, extreme_values
from tests.security.route_rules import VENDOR_502
from tests.support.agents import make_agent
from tests.support.live import LiveServer

MAX_EXAMPLES = 12
EXTREME_FORMATS = {"date": extreme_days(), "date-time": extreme_instants()}


@pytest.fixture
async def token_and_server(settings, sessionmaker, engine):
    admin = await make_agent(sessionmaker, "admin", email="fuzz-admin@example.com")
    async with sessionmaker() as db:
        token = await service.create_api_token(db, await service.get_agent_by_email(db, admin.email))
    seeded = await seed_checkout_session(sessionmaker)
    # Real path parameters for half the cases: a random id or e-mail answers 404 or 400 before the
    # handler reads its query parameters.
    known = {"session_id": str(seeded.id), "email": "jane@acme.io"}
    with LiveServer(create_app(settings)) as server:
        yield token, server, known


@pytest.fixture
def extreme_formats():
    # Schemathesis keeps string formats in a process-wide registry: registered for this test only.
    for name, strategy in EXTREME_FORMATS.items():
        schemathesis.openapi.format(name, strategy)
    yield
    for name in EXTREME_FORMATS:
        unregister_string_format(name)


def _extremes_for(op: Any) -> Any:
    """Up to two of the operation's path and query parameters, each with an extreme value."""
    names = [("path", p.name) for p in op.path_parameters] + [("query", p.name) for p in op.query]
    if not names:
        return st.just({})
    return st.dictionaries(st.sampled_from(names), extreme_values(), max_size=2)


def test_no_operation_answers_5xx(token_and_server, extreme_formats):
    token, server, known = token_and_server
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 5
    failures: list[str] = []

    def run(op):
        cases = op.as_strategy()
        # Reads only: a real customer's DELETE would erase what the other operations read.
        real = {p.name: known[p.name] for p in op.path_parameters if p.name in known and op.method == "get"}
        if real:
            cases = st.one_of(cases, op.as_strategy(path_parameters=real))

        @hypothesis.given(case=cases, extremes=_extremes_for(op))
        @hypothesis.settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def check(case, extremes):
            for (where, name), value in extremes.items():
                if where == "path":
                    case.path_parameters = {**(case.path_parameters or {}), name: value}
                else:
                    case.query = {**(case.query or {}), name: value}
            resp = case.call(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=15)
            vendor_said_no = (
                resp.status_code == 502
                and (op.method.upper(), op.path) in VENDOR_502
                and "application/problem+json" in str(resp.headers.get("content-type", ""))
            )
            if resp.status_code >= 500 and not vendor_said_no:
                failures.append(
                    f"{op.method.upper()} {op.path} -> {resp.status_code}: {case.as_curl_command()}"
                )

        check()

    for op in operations:
        run(op)
    assert not failures, "\n".join(failures[:20])
