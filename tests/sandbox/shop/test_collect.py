"""The demo shop hands the tracker's uploads to the Clarity simulator and always answers 204."""

from __future__ import annotations

import asyncio
import gzip
import json

import httpx2
import pytest

from supportlens_sandbox import clarity_demo
from supportlens_sandbox.clarity import ClaritySimState, create_clarity_simulator
from supportlens_sandbox.shop.app import create_shop_app
from tests.support.live import LiveServer


def upload(session_id: str) -> bytes:
    envelope = ["0.8.40", 1, 0, 1200, "demo123", "1oh3r9k", session_id, 1, 0, 0, 0, "https://shop.example/"]
    return gzip.compress(json.dumps({"e": envelope, "a": [[10, 9, 100, 200]], "p": []}).encode())


def shop() -> httpx2.AsyncClient:
    app = create_shop_app(supportlens_url="http://127.0.0.1:1", site_key="k", clarity_project="demo123")
    return httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://shop.test")


async def test_uploads_reach_the_simulator_in_process(monkeypatch: pytest.MonkeyPatch):
    state = ClaritySimState()
    monkeypatch.setattr(clarity_demo, "DEMO_STATE", state)
    async with shop() as http:
        assert (await http.post("/collect", content=upload("sessa1"))).status_code == 204
        assert (await http.post("/collect", content=b"not an upload")).status_code == 204
        assert (await http.post("/collect", content=b"")).status_code == 204
    assert state.uploads == 1
    assert ("demo123", "1oh3r9k", "sessa1") in state.sessions


async def test_uploads_reach_the_simulator_over_http(monkeypatch: pytest.MonkeyPatch):
    state = ClaritySimState()
    monkeypatch.setattr(clarity_demo, "DEMO_STATE", None)
    server = LiveServer(create_clarity_simulator(state)).start()
    try:
        monkeypatch.setenv("SUPPORTLENS_DEMO_CLARITY_UPLOAD_URL", f"{server.url}/collect")
        async with shop() as http:
            assert (await http.post("/collect", content=upload("sessb2"))).status_code == 204
        for _ in range(50):
            if state.uploads:
                break
            await asyncio.sleep(0.05)
        assert ("demo123", "1oh3r9k", "sessb2") in state.sessions
    finally:
        server.stop()


async def test_a_dead_simulator_does_not_change_the_answer(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(clarity_demo, "DEMO_STATE", None)
    monkeypatch.setenv("SUPPORTLENS_DEMO_CLARITY_UPLOAD_URL", "http://127.0.0.1:9/collect")
    async with shop() as http:
        assert (await http.post("/collect", content=upload("sessc3"))).status_code == 204
