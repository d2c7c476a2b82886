"""Site context per page from the latest snapshot, and the partial the session view includes."""

from __future__ import annotations

from datetime import timedelta

from supportlens.db.base import utcnow
from supportlens.insights import service
from supportlens.insights.models import ClaritySnapshot
from supportlens.insights.site_context import site_context
from supportlens.web.pages import templates
from tests.insights.support import running_simulator


def _frustration(url: str | None, sessions: int, pct: float) -> dict:
    row = {
        "sessionsCount": str(sessions),
        "sessionsWithMetricPercentage": pct,
        "sessionsWithoutMetricPercentage": 100 - pct,
        "pagesViews": str(sessions),
        "subTotal": "1",
    }
    if url:
        row["URL"] = url
    return row


def _snapshot(dimensions, payload, minutes_ago=0):
    return ClaritySnapshot(
        project_id="p1",
        pulled_at=utcnow() - timedelta(minutes=minutes_ago),
        schedule="t",
        num_of_days=1,
        dimensions=dimensions,
        payload=payload,
        metric_count=len(payload),
        row_count=1,
    )


async def test_rates_and_ratio_to_the_site_average(db):
    by_url = [
        {
            "metricName": "Rage Click Count",
            "information": [
                _frustration("https://shop.example/pay", 200, 14.0) | {"Device": "PC"},
                _frustration("https://shop.example/pay", 100, 14.0) | {"Device": "Mobile"},
                _frustration("https://shop.example/", 1000, 2.0) | {"Device": "PC"},
            ],
        },
        {
            "metricName": "DeadClickCount",
            "information": [
                _frustration("https://shop.example/pay", 300, 3.0),
                _frustration("https://shop.example/", 1000, 4.0),
            ],
        },
        {
            "metricName": "Traffic",
            "information": [
                {"URL": "https://shop.example/pay", "totalSessionCount": "300", "distantUserCount": "250"},
            ],
        },
    ]
    site = [{"metricName": "RageClickCount", "information": [_frustration(None, 5000, 2.8)]}]
    db.add_all(
        [
            _snapshot(["URL", "Device"], by_url),
            _snapshot([], site, minutes_ago=30),
            _snapshot(["URL"], [], minutes_ago=300),
        ]
    )
    await db.commit()

    ctx = await site_context(db, ["https://shop.example/pay?step=2", "/", "/never-seen"])
    pay = ctx["https://shop.example/pay?step=2"]
    assert pay.path == "/pay" and pay.found and pay.sessions == 300
    rage = next(m for m in pay.metrics if m.key == "rage_clicks")
    assert round(rage.page_rate, 1) == 14.0 and rage.site_rate == 2.8 and round(rage.ratio, 1) == 5.0
    assert rage.elevated
    assert pay.verdict == "site_wide"
    assert pay.headline == "/pay: rage clicks in 14% of all sessions, 5× the site's average."
    assert "Broken for everyone" in pay.advice
    dead = next(m for m in pay.metrics if m.key == "dead_clicks")
    assert not dead.elevated and "below the site's average" in dead.sentence

    home = ctx["/"]
    assert home.verdict == "normal" and "probably specific to them" in home.advice
    assert ctx["/never-seen"].verdict == "no_data" and not ctx["/never-seen"].found
    assert await site_context(db, []) == {}


async def test_no_snapshot_yet_means_no_data(db):
    ctx = await site_context(db, ["https://shop.example/pay"])
    assert ctx["https://shop.example/pay"].verdict == "no_data"


async def test_site_context_from_a_pulled_simulator_snapshot(settings_factory, sessionmaker):
    with running_simulator(site_origin="https://shop.example") as sim:
        settings = settings_factory(**sim.settings())
        for key in ("url_device", "traffic"):
            sched = next(s for s in service.SCHEDULES if s.key == key)
            result = await service.pull_insights(
                sessionmaker, settings, schedule=key, dimensions=sched.dimensions
            )
            assert result.ok, result.message
    async with sessionmaker() as db:
        ctx = await site_context(db, ["https://shop.example/pay", "https://shop.example/pricing"])
    pay, pricing = ctx["https://shop.example/pay"], ctx["https://shop.example/pricing"]
    assert pay.verdict == "site_wide"
    assert {m.key for m in pay.elevated} >= {"rage_clicks", "script_errors"}
    assert pricing.verdict == "normal"
    assert pay.headline.startswith("/pay: ") and "the site's average" in pay.headline


def _render(site_context) -> str:
    return templates.env.get_template("insights/_site_context.html").render(site_context=site_context)


async def test_partial_renders_verdicts_and_escapes_paths(db):
    by_url = [
        {
            "metricName": "RageClickCount",
            "information": [
                _frustration("https://shop.example/pay", 300, 15.0),
                _frustration("https://shop.example/<img src=x onerror=alert(1)>", 50, 1.0),
                _frustration("https://shop.example/", 3000, 2.0),
            ],
        }
    ]
    db.add(_snapshot(["URL"], by_url))
    await db.commit()
    ctx = await site_context(
        db,
        [
            "https://shop.example/pay",
            "https://shop.example/<img src=x onerror=alert(1)>",
            "https://shop.example/faq",
        ],
    )
    html = _render(ctx)
    assert 'data-path="/pay" data-verdict="site_wide"' in html
    assert "Broken for everyone" in html
    assert "/pay: rage clicks in 15% of all sessions" in html and "the site&#39;s average" in html
    assert "Only this customer?" in html
    assert 'data-verdict="no_data"' in html
    assert "<img src=x" not in html and "&lt;img src=x" in html
    assert "No site-wide Clarity insights yet" in _render({})
    assert "No site-wide Clarity insights yet" in _render(None)
    assert 'data-path="/pay"' in _render(list(ctx.values()))
