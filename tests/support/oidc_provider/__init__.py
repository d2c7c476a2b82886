"""Start the real OpenID Provider (server.mjs, npm `oidc-provider`) on a free port for the SSO tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx2

from tests.support.live import free_port

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = Path(__file__).with_name("server.mjs")
CLIENT_ID = "supportlens-test"
CLIENT_SECRET = "test-client-secret-0123456789"


class OidcProvider:
    def __init__(self, redirect_uri: str, accounts: list[dict[str, Any]]) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.discovery_url = f"{self.issuer}/.well-known/openid-configuration"
        self.redirect_uri = redirect_uri
        self.accounts = accounts
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> OidcProvider:
        node = shutil.which("node")
        assert node, "node is needed for the OpenID Provider"
        env = dict(
            os.environ,
            PORT=str(self.port),
            CLIENT_ID=CLIENT_ID,
            CLIENT_SECRET=CLIENT_SECRET,
            REDIRECT_URI=self.redirect_uri,
            ACCOUNTS=json.dumps(self.accounts),
            NODE_PATH=str(ROOT / "node_modules"),
        )
        self.proc = subprocess.Popen(
            [node, str(SCRIPT)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"OpenID Provider exited: {self.proc.stdout.read() if self.proc.stdout else ''}"
                )
            try:
                if httpx2.get(self.discovery_url, timeout=1).status_code == 200:
                    return self
            except httpx2.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("OpenID Provider did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self) -> OidcProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
