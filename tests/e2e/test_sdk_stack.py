"""supportlens.js sends an error's stack (bounded, without query strings) that ingest accepts."""

from __future__ import annotations

from tests.e2e.test_sdk import _setup


async def test_an_uncaught_error_is_sent_with_its_stack(browser, live_server, sessionmaker):
    server, page, sent = await _setup(browser, live_server, sessionmaker)
    try:
        await page.goto("/?token=s3cr3t")
        await page.add_script_tag(
            content="setTimeout(function submitPayment() { var order; return order.amount; }, 0);"
            "Promise.reject(new Error('Transfer 8812 failed'));"
            # a script loaded with a token in its address: the SDK drops query strings from frames
            "setTimeout(function () { var e = new Error('signed');"
            " e.stack = 'Error: signed\\n    at load (https://cdn.example/app.js?token=s3cr3t:1:2)';"
            " throw e; }, 0);"
        )
        statuses: list[int] = []
        page.on("response", lambda r: statuses.append(r.status) if "/api/ingest/v1/events" in r.url else None)
        await page.wait_for_timeout(300)
        await page.evaluate("SupportLens.flush()")
        # The SDK also flushes on its own timer and when Clarity's ids arrive, so on a slow machine the
        # errors may have left before this flush: wait for them and their answers, whichever batch.
        errors: list[dict] = []
        for _ in range(150):
            errors = [e for b in sent for e in b["events"] if e["type"] == "error"]
            if len(errors) >= 3 and len(statuses) >= len(sent):
                break
            await page.wait_for_timeout(100)
        assert statuses and all(status == 202 for status in statuses)
        thrown = next(e for e in errors if "amount" in e["data"]["message"])
        stack = thrown["data"]["stack"]
        assert "at submitPayment" in stack and "\n" in stack
        assert len(stack) <= 2000
        signed = next(e for e in errors if e["data"]["message"].endswith("signed"))
        assert signed["data"]["stack"] == "Error: signed\nat load (https://cdn.example/app.js:1:2)"
        rejected = next(e for e in errors if e["data"].get("kind") == "unhandledrejection")
        assert "Transfer 8812 failed" in rejected["data"]["stack"]
    finally:
        await page.context.close()
        server.stop()
