"""Issue #24, finding 1: the real process's log holds no customer e-mail, phone or visitor address.

`supportlens serve` runs as a subprocess at its default log level; an agent searches by e-mail and by
phone, opens the customer's pages and erases them, and a visitor's browser (behind the proxy) sends a
batch naming them. Then stderr is read whole.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

import httpx2

from supportlens.auth import service as auth
from supportlens.capture import sites
from tests.support.browsers import BROWSER
from tests.support.ingest import ORIGIN, PROJECT, ago, batch, event, headers
from tests.support.live import free_port

EMAIL = "jane.private@acme.io"
PHONE_DIGITS = "4155550132"
VISITOR_IP = "198.51.100.23"


async def _wait_healthy(base: str, proc: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 60
    async with httpx2.AsyncClient(headers=BROWSER, base_url=base, timeout=5) as c:
        while time.monotonic() < deadline:
            assert proc.returncode is None, "supportlens serve exited"
            try:
                if (await c.get("/healthz")).status_code == 200:
                    return
            except httpx2.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError("supportlens serve did not answer /healthz within 60 s")


async def _serve(database_url: str, port: int) -> asyncio.subprocess.Process:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORTLENS_")}
    env.update(
        SUPPORTLENS_DATABASE_URL=database_url,
        SUPPORTLENS_SECRET_KEY="access-log-test-secret-key-0123456789",
        SUPPORTLENS_ENVIRONMENT="test",
        SUPPORTLENS_RUN_WORKER="false",
        SUPPORTLENS_FORWARDED_ALLOW_IPS="127.0.0.1",
        SUPPORTLENS_HUBSPOT_BASE_URL="http://127.0.0.1:9",
        SUPPORTLENS_DWOLLA_BASE_URL="http://127.0.0.1:9",
    )  # no SUPPORTLENS_LOG_LEVEL: the default level is what is tested
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "supportlens.cli", "serve", "--port", str(port),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
    )  # fmt: skip


async def _agent_work(base: str, token: str, site_key: str) -> None:
    bearer = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(base_url=base, timeout=30, headers={**BROWSER, **bearer}) as c:
        for q in (EMAIL, f"+1 {PHONE_DIGITS[:3]} {PHONE_DIGITS[3:6]} {PHONE_DIGITS[6:]}"):
            assert (await c.get("/api/search", params={"q": q})).status_code == 200
        visitor = {**headers(), "X-Forwarded-For": VISITOR_IP}
        body = batch(site_key, [event("click", at=ago(seconds=3))], customer={"email": EMAIL})
        assert (await c.post("/api/ingest/v1/events", json=body, headers=visitor)).status_code == 202
        assert (await c.get(f"/api/clarity/sessions?customer={EMAIL}")).status_code == 200
        assert (await c.get(f"/api/customers/{EMAIL}/journey?from=2026-01-01")).status_code == 200
        assert (
            await c.get(f"/customers/{EMAIL}/journey", headers={"Accept": "text/html"})
        ).status_code == 200
        assert (await c.delete(f"/api/customers/{EMAIL}")).status_code == 200


async def test_the_log_of_the_real_process_names_no_customer(db: Any, database_url: str) -> None:
    admin = await auth.create_agent(db, email="admin@support.example", role="admin")
    token = await auth.create_api_token(db, admin)
    _, site_key = await sites.create_site(db, name="Shop", origins=[ORIGIN], clarity_project_id=PROJECT)
    port = free_port()
    proc = await _serve(database_url, port)
    try:
        await _wait_healthy(f"http://127.0.0.1:{port}", proc)
        await _agent_work(f"http://127.0.0.1:{port}", token, site_key)
    finally:
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    log = err.decode()
    assert log.strip(), "the process logged nothing"
    for secret in (EMAIL, EMAIL.replace("@", "%40"), "jane.private", PHONE_DIGITS, "555-0132", VISITOR_IP):
        assert secret not in log, f"{secret!r} is in the log:\n{log}"
    requests = [r for r in map(json.loads, log.splitlines()) if r.get("event") == "request"]
    paths = {r["path"] for r in requests}
    assert {"/api/search", "/api/ingest/v1/events", "/api/customers/{email}/journey"} <= paths
    assert "/customers/{email}/journey" in paths and "/api/customers/{email}" in paths
    for r in requests:
        assert r["status"] and r["duration_ms"] >= 0 and r["request_id"]
        assert r["client"].startswith("ip_") and len(r["client"]) > 10
    visitor_lines = [r for r in requests if r["path"] == "/api/ingest/v1/events"]
    agent_lines = [r for r in requests if r["path"] == "/api/search"]
    assert visitor_lines[0]["client"] != agent_lines[0]["client"]  # a pseudonym per address, not a constant


def test_every_log_line_has_customer_pii_masked_whoever_logs_it(capsys) -> None:
    import logging

    from supportlens.logging import configure_logging, get_logger

    configure_logging("INFO", json=True)
    try:
        logging.getLogger("some.library").warning("GET https://api.example/contacts/%s failed", EMAIL)
        get_logger("supportlens.test").info("upstream", detail={"to": "call +1 415-555-0132", "n": 3})
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    finally:
        configure_logging("WARNING", json=False)
    assert lines[0]["event"] == "GET https://api.example/contacts/[email] failed"
    assert lines[1]["detail"] == {"to": "call [phone]", "n": 3}
