"""Site keys: created by CLI or admin page (shown once, stored hashed), listed, revoked; the SDK file."""

from __future__ import annotations

import asyncio
import gzip
import re

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from supportlens.audit.models import AuditEntry
from supportlens.capture import sites
from supportlens.cli import app as cli_app
from supportlens.config import get_settings
from supportlens.sessions.models import IngestSite
from tests.support.ingest import batch, event, headers


def invoke(args):
    return asyncio.to_thread(CliRunner().invoke, cli_app, args)


@pytest.fixture
def cli_env(monkeypatch, database_url):
    monkeypatch.setenv("SUPPORTLENS_DATABASE_URL", database_url)
    monkeypatch.setenv("SUPPORTLENS_SECRET_KEY", "test-secret-key-not-for-production")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def test_cli_creates_site_prints_key_once_and_stores_hash(cli_env, engine, db, client):
    out = await invoke(
        ["sites", "create", "--name", "Shop", "--origin", "https://shop.example/", "--clarity-project", "p1"]
    )
    assert out.exit_code == 0, out.output
    key = re.search(r"pk_live_[A-Za-z0-9_\-]+", out.output).group(0)
    site = (await db.scalars(select(IngestSite))).one()
    assert site.key_hash == sites.hash_key(key) and key not in str(site.__dict__)
    assert site.allowed_origins == ["https://shop.example"] and site.clarity_project_id == "p1"
    r = await client.post("/api/ingest/v1/events", json=batch(key, [event()]), headers=headers())
    assert r.status_code == 202
    listed = await invoke(["sites", "list"])
    assert site.key_prefix in listed.output and key not in listed.output
    revoked = await invoke(["sites", "revoke", site.key_prefix])
    assert revoked.exit_code == 0, revoked.output
    bad = await invoke(["sites", "create", "--name", "X", "--origin", "ftp://nope"])
    assert bad.exit_code == 2 and "origin" in bad.output and "Traceback" not in bad.output


async def test_admin_page_creates_lists_and_revokes_with_csrf(signed_in, db):
    admin = await signed_in("admin")
    form = {
        "name": "Demo <b>shop</b>",
        "origins": "https://a.example, http://127.0.0.1:8004",
        "clarity_project": "demo1",
    }
    no_csrf = await admin.client.post("/admin/sites", data=form)
    assert no_csrf.status_code == 403
    r = await admin.client.post("/admin/sites", data={**form, "csrf_token": admin.csrf})
    assert r.status_code == 200, r.text
    key = re.search(r'id="created-site-key">(pk_live_[^<]+)<', r.text).group(1)
    assert "Demo &lt;b&gt;shop&lt;/b&gt;" in r.text
    site = (await db.scalars(select(IngestSite))).one()
    assert site.key_hash == sites.hash_key(key)
    page = await admin.client.get("/admin/sites")
    assert key not in page.text and site.key_prefix in page.text and "http://127.0.0.1:8004" in page.text
    r = await admin.client.post(f"/admin/sites/{site.id}/revoke", data={"csrf_token": admin.csrf})
    assert r.status_code == 303
    await db.refresh(site)
    assert site.revoked_at is not None and not site.active
    actions = [a.action for a in (await db.scalars(select(AuditEntry))).all()]
    assert "site_created" in actions and "site_revoked" in actions
    agent = await signed_in("agent", email="a2@example.com")
    assert (await agent.client.get("/admin/sites")).status_code == 403


async def test_sdk_is_served_small_and_cross_origin(client):
    r = await client.get("/sdk/v1/supportlens.js")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/javascript")
    assert r.headers["cross-origin-resource-policy"] == "cross-origin"
    size = len(gzip.compress(r.content, 9))
    assert size <= 6 * 1024, f"supportlens.js is {size} bytes gzipped"
    assert b"window" in r.content and b"require(" not in r.content and b"import " not in r.content
