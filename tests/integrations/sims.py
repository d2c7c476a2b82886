"""The HubSpot and Dwolla simulators on real ports, shared by the integration, search and e2e tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from supportlens_sandbox.dwolla import DWOLLA_KEY, DWOLLA_SECRET, create_dwolla_app
from supportlens_sandbox.hubspot.app import HUBSPOT_TOKEN, create_hubspot_app
from tests.support.live import LiveServer


@dataclass
class Sim:
    server: LiveServer
    app: Any

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def control(self) -> Any:
        return self.app.state.sandbox

    def knobs(self, **changes: Any) -> None:
        self.control.update(**changes)

    def count(self, name: str = "requests") -> int:
        return int(self.control.counters.get(name, 0))


@dataclass
class Sims:
    hubspot: Sim
    dwolla: Sim

    def reset(self) -> None:
        self.hubspot.control.reset()
        self.dwolla.control.reset()

    def settings(self) -> dict[str, Any]:
        return {
            "hubspot_base_url": self.hubspot.url,
            "hubspot_token": HUBSPOT_TOKEN,
            "dwolla_base_url": self.dwolla.url,
            "dwolla_key": DWOLLA_KEY,
            "dwolla_secret": DWOLLA_SECRET,
        }


def start_sim(factory: Any) -> Sim:
    app = factory()
    return Sim(LiveServer(app).start(), app)


@pytest.fixture(scope="session")
def sim_servers() -> Iterator[Sims]:
    hubspot = start_sim(create_hubspot_app)
    dwolla = start_sim(create_dwolla_app)
    yield Sims(hubspot, dwolla)
    hubspot.server.stop()
    dwolla.server.stop()


@pytest.fixture
def sims(sim_servers: Sims) -> Iterator[Sims]:
    """Both simulators with default knobs (and cleared counters) for each test."""
    sim_servers.reset()
    yield sim_servers
    sim_servers.reset()
