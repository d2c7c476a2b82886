"""Automated traffic: each rule flags the session, the first reason stays, a person's interaction stays
seen; the admin sites page counts them."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from supportlens.sessions.automation import agent_reason, batch_reason, carries_evidence, listable
from supportlens.sessions.models import UserSession
from tests.support.ingest import IPHONE_UA, batch, event, headers

URL = "/api/ingest/v1/events"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"


@pytest.mark.parametrize(
    ("user_agent", "reason"),
    [
        ("curl/8.5.0", "script"),
        ("Wget/1.21.4", "script"),
        ("python-requests/2.32.3", "script"),
        ("python-httpx2/2.17.0", "script"),
        ("Go-http-client/1.1", "script"),
        ("node-fetch/1.0 (+https://github.com/bitinn/node-fetch)", "script"),
        ("Datadog/Synthetics", "script"),
        ("Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)", "bot"),
        ("Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)", "bot"),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot"),
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 "
            "Safari/537.36",
            "headless",
        ),
        ("", "script"),
        (None, "script"),
        (CHROME, None),
        (FIREFOX, None),
        (IPHONE_UA, None),
    ],
)
def test_user_agent_rules(user_agent, reason):
    assert agent_reason(user_agent) == reason


def test_webdriver_wins_and_evidence_rules():
    assert batch_reason(CHROME, webdriver=True) == "webdriver"
    assert batch_reason(CHROME, webdriver=False) is None
    assert batch_reason("curl/8", webdriver=False) == "script"
    assert carries_evidence(None, None) and carries_evidence(None, True)
    assert not carries_evidence(None, False)  # nobody acted yet
    assert not carries_evidence("bot", True) and not listable("rate") and listable(None)


async def _session(db: Any) -> UserSession:
    db.expire_all()
    return (await db.scalars(select(UserSession))).one()


async def test_each_batch_rule_flags_the_session_and_the_first_reason_stays(client, db, site_key):
    automation = {"webdriver": True, "interacted": False}
    r = await client.post(
        URL, json=batch(site_key, [event()], automation=automation), headers=headers(ua=CHROME)
    )
    assert r.status_code == 202, r.text
    s = await _session(db)
    assert (s.automated, s.human_interaction) == ("webdriver", False)
    # A later batch from curl does not replace the reason; an interaction reported later stays.
    r = await client.post(
        URL,
        json=batch(site_key, [event()], automation={"webdriver": False, "interacted": True}),
        headers=headers(ua="curl/8.5.0"),
    )
    assert r.status_code == 202
    s = await _session(db)
    assert (s.automated, s.human_interaction) == ("webdriver", True)
    r = await client.post(
        URL,
        json=batch(site_key, [event()], automation={"webdriver": False, "interacted": False}),
        headers=headers(),
    )
    assert (await _session(db)).human_interaction is True


async def test_a_person_and_an_older_script_are_not_flagged(client, db, site_key):
    r = await client.post(URL, json=batch(site_key, [event()]), headers=headers(ua=IPHONE_UA))
    assert r.status_code == 202
    s = await _session(db)
    assert (s.automated, s.human_interaction) == (None, None)


@pytest.mark.parametrize("ua", ["curl/8.5.0", "Mozilla/5.0 (compatible; UptimeRobot/2.0)"])
async def test_a_script_or_a_monitor_is_flagged_by_its_user_agent(client, db, site_key, ua):
    r = await client.post(URL, json=batch(site_key, []), headers=headers(ua=ua))
    assert r.status_code == 202
    assert (await _session(db)).automated in ("script", "bot")


@pytest.mark.parametrize(
    "bad", [{"webdriver": "yes"}, {"interacted": 1}, {"webdriver": False, "extra": True}, []]
)
async def test_hostile_automation_field_is_400_naming_it(client, db, site_key, bad):
    r = await client.post(URL, json=batch(site_key, [event()], automation=bad), headers=headers())
    assert r.status_code == 400
    assert "automation" in r.text
    assert (await db.scalars(select(UserSession))).first() is None


async def test_the_admin_sites_page_counts_automated_sessions(client, db, site_key, signed_in):
    for n, ua in enumerate(["curl/8.5.0", "curl/8.5.0", "Mozilla/5.0 (compatible; UptimeRobot/2.0)", CHROME]):
        body = batch(site_key, [event()], session_id=f"s{n}xyz", user_id=f"u{n}xyz")
        assert (await client.post(URL, json=body, headers=headers(ua=ua))).status_code == 202
    admin = await signed_in("admin")
    page = await admin.client.get("/admin/sites")
    assert page.status_code == 200
    assert "3 sessions" in page.text and "script 2" in page.text and "bot 1" in page.text


async def test_a_signed_in_automated_session_is_not_in_the_customers_list(
    client, db, site_key, signed_in, worker
):
    jane = {"email": "jane@acme.io"}
    robot = batch(site_key, [event()], customer=jane, automation={"webdriver": True, "interacted": True})
    person = batch(site_key, [event()], customer=jane, session_id="s2abc", user_id="u2abc")
    assert (await client.post(URL, json=robot, headers=headers())).status_code == 202
    assert (await client.post(URL, json=person, headers=headers())).status_code == 202
    await worker.drained()
    agent = await signed_in("agent")
    r = await agent.client.get("/api/clarity/sessions", params={"customer": "jane@acme.io"})
    assert r.status_code == 200
    assert [i["clarityUserId"] for i in r.json()["items"]] == ["u2abc"]
