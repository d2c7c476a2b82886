from __future__ import annotations


async def test_health_ready_metrics(client):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["database"] == "ok"
    await client.get("/login")
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert (
        'supportlens_http_request_duration_seconds_count{method="GET",route="/login",status="200"}'
        in metrics.text
    )


async def test_security_headers_and_request_id(client):
    resp = await client.get("/login", headers={"X-Request-ID": "abc-123"})
    assert resp.headers["x-request-id"] == "abc-123"
    csp = resp.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert resp.headers["x-frame-options"] == "DENY"
    bad = await client.get("/login", headers={"X-Request-ID": "<script>"})
    assert bad.headers["x-request-id"] != "<script>"


async def test_readyz_reports_database_down(settings_factory):
    import httpx2

    from supportlens.app import create_app

    app = create_app(settings_factory(database_url="postgresql+asyncpg://postgres@127.0.0.1:1/none"))
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://t") as c:
        resp = await c.get("/readyz")
    assert resp.status_code == 503


async def test_gc_freeze_moves_startup_objects_out_of_the_collector(settings_factory):
    import gc

    from supportlens.app import create_app

    gc.unfreeze()
    app = create_app(settings_factory(gc_freeze=True, run_worker=False))
    try:
        async with app.router.lifespan_context(app):
            assert gc.get_freeze_count() > 10_000  # routes, models, patterns made at startup
    finally:
        gc.unfreeze()
    plain = create_app(settings_factory(run_worker=False))
    async with plain.router.lifespan_context(plain):
        assert gc.get_freeze_count() == 0  # off unless `serve` turns it on
