"""`supportlens demo` serves a login page on the printed URL and the printed login works, on an
embedded PostgreSQL that it stops when it is stopped."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sys
import time

import httpx2
import psutil

from tests.support.agents import csrf_from
from tests.support.live import free_port_block


async def _read_until_ready(proc: asyncio.subprocess.Process, timeout: float) -> str:
    out = ""
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while "stop:" not in out:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"demo did not start in time; output so far:\n{out}"
        line = await asyncio.wait_for(proc.stdout.readline(), remaining)
        if not line:
            raise AssertionError(f"demo exited early:\n{out}")
        out += line.decode()
    return out


DEMO_PORTS = 5  # the app, HubSpot, Dwolla, Clarity, the demo shop


async def test_demo_prints_a_working_login_and_stops_its_database(embedded_tmp_path):
    tmp_path = embedded_tmp_path
    port = free_port_block(DEMO_PORTS)
    env = {**os.environ, "SUPPORTLENS_LOG_LEVEL": "WARNING"}
    env.pop("SUPPORTLENS_DATABASE_URL", None)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "supportlens.cli",
        "demo",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path / "demo"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    try:
        out = await _read_until_ready(proc, 240)
        url = re.search(r"open:\s+(\S+)", out).group(1)
        email, password = re.search(r"login:\s+(admin@\S+)\s+/\s+(\S+)", out).groups()
        assert url == f"http://127.0.0.1:{port}/login"
        data_dir = tmp_path / "demo" / "postgres"
        assert f"database: embedded PostgreSQL, data in {data_dir}" in out
        postgres = int((data_dir / "postmaster.pid").read_text().split()[0])
        assert psutil.pid_exists(postgres)
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            page = None
            for _ in range(100):
                try:
                    page = await client.get("/login")
                    break
                except httpx2.TransportError:
                    await asyncio.sleep(0.1)
            assert page is not None, f"the app never answered; demo returncode {proc.returncode}:\n{out}"
            assert page.status_code == 200 and "Sign in to SupportLens" in page.text
            resp = await client.post(
                "/login", data={"email": email, "password": password, "csrf_token": csrf_from(page.text)}
            )
            assert resp.status_code == 303
            me = await client.get("/api/me")
            assert me.status_code == 200 and me.json()["role"] == "admin"
    finally:
        if proc.returncode is None:
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()
    assert proc.returncode in (0, 143), f"returncode {proc.returncode}"
    deadline = time.monotonic() + 10
    while psutil.pid_exists(postgres) and psutil.Process(postgres).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the demo's PostgreSQL outlived the demo"
        await asyncio.sleep(0.1)
    assert not (data_dir / "postmaster.pid").exists()


async def test_demo_says_which_port_is_busy(tmp_path):
    port = free_port_block(DEMO_PORTS)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port + 2))
        taken.listen()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "supportlens.cli", "demo", "--port", str(port),
            "--data-dir", str(tmp_path / "demo"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 2
    assert f"port {port + 2} on 127.0.0.1 is in use" in err.decode()
    assert "Traceback" not in err.decode() and "login:" not in out.decode()
