"""Fixtures for tests that send sessions: a registered site (with or without required consent)."""

from __future__ import annotations

from typing import Any

import pytest

from supportlens.capture import sites
from tests.support.ingest import ORIGIN, PROJECT


@pytest.fixture
async def site_key(db: Any) -> str:
    _, key = await sites.create_site(db, name="Shop", origins=[ORIGIN], clarity_project_id=PROJECT)
    return key


@pytest.fixture
async def consent_site_key(db: Any) -> str:
    _, key = await sites.create_site(
        db,
        name="EU shop",
        origins=["https://eu.shop.example"],
        clarity_project_id=PROJECT,
        require_consent=True,
    )
    return key
