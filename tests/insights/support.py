"""The Clarity simulator on a real port, and settings that point the app at it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from supportlens_sandbox.clarity import ClaritySimState, create_clarity_simulator
from tests.support.live import LiveServer

PROJECT = "demo123"
TOKEN = "sim-clarity-token"


@dataclass
class RunningSim:
    state: ClaritySimState
    url: str

    def settings(self, **extra: object) -> dict[str, object]:
        values: dict[str, object] = {
            "clarity_project_id": PROJECT,
            "clarity_api_token": TOKEN,
            "clarity_export_base_url": self.url,
            "clarity_recordings_base_url": self.url,
        }
        values.update(extra)
        return values


@contextmanager
def running_simulator(**state_kwargs: object) -> Iterator[RunningSim]:
    state = ClaritySimState(token=TOKEN, project_id=PROJECT, **state_kwargs)  # type: ignore[arg-type]
    server = LiveServer(create_clarity_simulator(state)).start()
    try:
        yield RunningSim(state=state, url=server.url)
    finally:
        server.stop()
