"""Search tests run the app against the HubSpot and Dwolla simulators."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from supportlens.config import Settings
from tests.integrations.sims import Sims, sim_servers, sims  # noqa: F401 (fixtures)

DEADLINE = 1.5


@pytest.fixture
def settings(settings_factory: Callable[..., Settings], sims: Sims) -> Settings:  # noqa: F811
    return settings_factory(**sims.settings(), search_source_deadline_seconds=DEADLINE)
