"""Headers, cookies, secrets from files, secrets never logged, tokens and site keys stored hashed."""

from __future__ import annotations

import httpx2
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from supportlens.app import create_app
from supportlens.auth import service
from supportlens.capture.sites import create_site
from supportlens.config import Settings
from supportlens.sessions.models import IngestSite
from tests.support.agents import PASSWORD, csrf_from, make_agent
from tests.support.browsers import BROWSER


async def test_security_headers_on_pages_and_apis(client, signed_in):
    s = await signed_in("agent")
    for c, path in ((client, "/login"), (s.client, "/"), (s.client, "/api/me"), (client, "/healthz")):
        resp = await c.get(path, headers={"Accept": "text/html"})
        csp = resp.headers["content-security-policy"]
        assert (
            "script-src 'self'" in csp and "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
        )
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp and "base-uri 'self'" in csp
        assert resp.headers["x-frame-options"] == "DENY"
        assert resp.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert resp.headers["x-content-type-options"] == "nosniff"
        assert "strict-transport-security" not in resp.headers  # not in development/test (plain HTTP)
    api = await s.client.get("/api/me")
    assert api.headers["cache-control"] == "no-store"


async def test_production_sends_hsts_and_secure_cookies(settings_factory, sessionmaker, engine):
    settings = settings_factory(environment="production", secret_key="a-real-production-secret-key-123456")
    app = create_app(settings)
    agent = await make_agent(sessionmaker, "agent")
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app, client=("127.0.0.1", 1))
        async with httpx2.AsyncClient(
            headers=BROWSER, transport=transport, base_url="https://testserver"
        ) as c:
            page = await c.get("/login")
            assert page.headers["strict-transport-security"].startswith("max-age=63072000")
            assert "Secure" in page.headers["set-cookie"]
            resp = await c.post(
                "/login",
                data={"email": agent.email, "password": PASSWORD, "csrf_token": csrf_from(page.text)},
            )
            cookie = resp.headers["set-cookie"]
            assert "sl_session=" in cookie and "Secure" in cookie and "HttpOnly" in cookie


def test_production_refuses_the_default_secret_key(monkeypatch):
    monkeypatch.delenv("SUPPORTLENS_SECRET_KEY", raising=False)
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        Settings(_env_file=None, environment="production")  # type: ignore[call-arg]


def test_secrets_come_from_files(tmp_path, monkeypatch):
    key_file = tmp_path / "secret_key"
    key_file.write_text("from-a-file-0123456789\n")
    monkeypatch.setenv("SUPPORTLENS_SECRET_KEY_FILE", str(key_file))
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir()
    (secrets_dir / "SUPPORTLENS_HUBSPOT_TOKEN").write_text("pat-from-dir")
    monkeypatch.setenv("SUPPORTLENS_SECRETS_DIR", str(secrets_dir))
    s = Settings(_env_file=None)  # type: ignore[call-arg]
    assert s.secret_key.get_secret_value() == "from-a-file-0123456789"
    assert s.hubspot_token.get_secret_value() == "pat-from-dir"
    assert "from-a-file" not in repr(s) and "pat-from-dir" not in str(s.model_dump())
    # The environment wins over a file; a missing file is a clear error naming the file, not a value.
    monkeypatch.setenv("SUPPORTLENS_HUBSPOT_TOKEN", "pat-from-env")
    assert Settings(_env_file=None).hubspot_token.get_secret_value() == "pat-from-env"  # type: ignore[call-arg]
    monkeypatch.setenv("SUPPORTLENS_SECRET_KEY_FILE", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="missing"):
        Settings(_env_file=None)  # type: ignore[call-arg]


async def test_no_secret_is_logged_during_requests(settings_factory, sessionmaker, engine, capsys):
    settings = settings_factory(log_level="DEBUG", log_json=True)
    app = create_app(settings)
    agent = await make_agent(sessionmaker, "agent")
    async with sessionmaker() as db:
        fresh = await service.get_agent_by_email(db, agent.email)
        token = await service.create_api_token(db, fresh)
        _, site_key = await create_site(db, name="Shop", origins=["https://shop.example"])
    capsys.readouterr()
    async with app.router.lifespan_context(app):
        transport = httpx2.ASGITransport(app=app, client=("127.0.0.1", 1))
        async with httpx2.AsyncClient(
            headers=BROWSER, transport=transport, base_url="http://testserver"
        ) as c:
            page = await c.get("/login")
            login = await c.post(
                "/login",
                data={"email": agent.email, "password": PASSWORD, "csrf_token": csrf_from(page.text)},
            )
            session_cookie = login.cookies.get("sl_session") or c.cookies.get("sl_session")
            await c.get("/api/me")
            await c.get("/api/me", headers={"Authorization": f"Bearer {token}"})
            await c.get("/api/me?token=" + token, headers={"Authorization": "Bearer slt_wrong-token-value"})
            await c.post(
                "/api/ingest/v1/events",
                json={
                    "siteKey": site_key,
                    "clarity": {"projectId": "p", "userId": "u", "sessionId": "s"},
                    "events": [],
                },
                headers={"Origin": "https://shop.example"},
            )
    out = capsys.readouterr()
    logged = out.out + out.err
    assert '"request"' in logged or "request" in logged  # the access log did run at DEBUG
    for secret in (
        PASSWORD,
        token,
        session_cookie,
        site_key,
        "slt_wrong-token-value",
        settings.secret_key.get_secret_value(),
    ):
        assert secret and secret not in logged, "a secret reached the logs"


async def test_api_tokens_and_site_keys_are_stored_hashed(db, sessionmaker):
    agent = await make_agent(sessionmaker, "agent")
    fresh = await service.get_agent_by_email(db, agent.email)
    token = await service.create_api_token(db, fresh)
    _, key = await create_site(db, name="Shop", origins=["https://shop.example"])
    from supportlens.auth.models import ApiToken

    stored_token = (await db.scalars(select(ApiToken))).one()
    stored_site = (await db.scalars(select(IngestSite))).one()
    assert token not in (stored_token.token_hash, stored_token.prefix) and len(stored_token.token_hash) == 64
    assert key not in (stored_site.key_hash, stored_site.key_prefix) and len(stored_site.key_hash) == 64
    assert stored_token.prefix == token[:10] and stored_site.key_prefix == key[:16]
    # The full values appear nowhere in the database
    from tests.privacy.test_erasure import rows_mentioning

    assert await rows_mentioning(db, token) == [] and await rows_mentioning(db, key) == []


def test_the_log_redactor_masks_secret_shapes():
    from supportlens.redaction import redact_secrets, redact_text

    line = (
        "GET /cb?code=abc123&state=s1 Authorization: Bearer eyJhbGciOi.payload.sig"
        " cookie sl_session=sls_abcdef123"
        " token slt_ABCDEFGHIJKL key pk_live_ABCDEFGHIJ ?client_secret=shh&x=1"
    )
    out = redact_text(line)
    for secret in ("abc123", "eyJhbGciOi", "sls_abcdef123", "slt_ABCDEFGHIJKL", "pk_live_ABCDEFGHIJ", "shh"):
        assert secret not in out
    assert "state=s1" in out and "x=1" in out
    event = redact_secrets(
        None, "info", {"event": "login", "password": "hunter2", "headers": {"Authorization": "x"}}
    )
    assert event["password"] == "[redacted]" and event["headers"]["Authorization"] == "[redacted]"
    assert event["event"] == "login"


async def test_upstream_urls_with_customer_emails_stay_out_of_the_logs(capsys):
    # The HTTP client logs each request's URL at INFO; Dwolla's `?email=` and HubSpot's read by e-mail
    # put a customer's address in it.
    from supportlens.integrations.http import VendorHTTP, VendorPolicy
    from supportlens.logging import configure_logging

    configure_logging("INFO", json=True)
    http = VendorHTTP(
        VendorPolicy(vendor="dwolla", base_url="http://upstream.test"),
        transport=httpx2.MockTransport(lambda request: httpx2.Response(200, json={"ok": True})),
    )
    try:
        await http.request("GET", "/customers", params={"email": "jane.private@example.com"})
        await http.request("GET", "/crm/v3/objects/contacts/jane.private@example.com")
    finally:
        await http.aclose()
    logged = "".join(capsys.readouterr())
    assert "jane.private" not in logged
