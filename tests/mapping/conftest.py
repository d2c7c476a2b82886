"""Fixtures shared by the mapping tests."""

from __future__ import annotations

import pytest

import supportlens.mapping.engine as engine


@pytest.fixture
def scored(monkeypatch) -> list[str]:
    """The Clarity session ids the engine re-scores, in order (clear it before the batch you watch)."""
    seen: list[str] = []
    original = engine._rescore_one

    async def counting(db_, session, *args, **kwargs):
        seen.append(session.clarity_session_id)
        await original(db_, session, *args, **kwargs)

    monkeypatch.setattr(engine, "_rescore_one", counting)
    return seen
