"""Possible sessions: below the threshold down to the floor, in the API and the panel; an agent confirms
or dismisses one, audited, and the decision survives re-scoring and becomes a label."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from supportlens.audit import service as audit
from supportlens.audit.models import AuditEntry
from supportlens.mapping.labels import calibration_report
from supportlens.sessions.possible import evidence_phrase, heading, is_possible, possible_emails
from tests.mapping.helpers import Batch, link_of, send

JANE = "jane@acme.io"
JOHN = "john@acme.io"
DAY = 24 * 60


async def _family(sessionmaker: Any, *anon: str) -> dict[str, str]:
    """A family computer signed in as Jane and as John, then visited by nobody signed in: each anonymous
    visit is about as likely Jane's as John's, a possible session of both (a browser two customers
    signed in on is no one's: its anonymous sessions stay under the listing threshold)."""
    async with sessionmaker() as db:
        await send(db, Batch("fam", "j", 0, 10, ip="10.0.0.2", email=JANE))
        await send(db, Batch("fam", "o", 300, 10, ip="10.0.0.2", email=JOHN))
        ids = {}
        for i, name in enumerate(anon):
            ids[name] = str((await send(db, Batch("fam", name, (3 + i) * DAY, 10, ip="10.9.9.9"))).id)
        return ids


def test_the_band_and_the_words():
    assert is_possible(0.35, decision=None, floor=0.2, threshold=0.5)
    assert not is_possible(0.5, decision=None, floor=0.2, threshold=0.5)  # listed
    assert not is_possible(0.19, decision=None, floor=0.2, threshold=0.5)  # too weak
    assert not is_possible(0.35, decision="unlink", floor=0.2, threshold=0.5)  # dismissed
    assert not is_possible(0.35, decision=None, floor=0.2, threshold=0.5, automated="bot")
    assert possible_emails({"a": 0.3, "b": 0.45, "c": 0.1, "d": 0.9}, floor=0.2, threshold=0.5) == ["b", "a"]
    assert evidence_phrase(["ip_match"]) == "same network, no sign-in"
    assert evidence_phrase(["device_link", "time_proximity", "ip_match"]) == (
        "same browser, same network, minutes apart, no sign-in"
    )
    assert heading(3, ["ip_match"]) == "3 possible sessions — same network, no sign-in"
    assert heading(1, ["device_link"]) == "1 possible session — same browser, no sign-in"
    assert heading(20, [], more=True).startswith("20+ possible sessions")


async def test_possible_sessions_in_the_api(signed_in, sessionmaker):
    ids = await _family(sessionmaker, "anon")
    async with sessionmaker() as db:
        rows = await link_of(db, "fam", "anon")
    assert 0.2 <= rows[JANE].confidence_score < 0.5 and 0.2 <= rows[JOHN].confidence_score < 0.5
    agent = await signed_in("agent")

    r = await agent.client.get("/api/clarity/sessions", params={"customer": JANE})
    assert r.status_code == 200 and r.json()["possible"] is None  # only when asked
    assert ids["anon"] not in [i["id"] for i in r.json()["items"]]  # below the threshold: not listed

    r = await agent.client.get("/api/clarity/sessions", params={"customer": JANE, "include": "possible"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert ids["anon"] not in [i["id"] for i in body["items"]]
    (item,) = body["possible"]["items"]
    assert item["id"] == ids["anon"] and body["possible"]["more"] is False
    mapping = item["mapping"]
    assert mapping["customerEmail"] == JANE and mapping["method"] == "device_link"
    assert abs(mapping["confidence"] - rows[JANE].confidence_score) < 1e-9
    assert "signed in as 2 different customers" in mapping["evidence"][0]["reason"]

    # The threshold the list uses bounds the band from above; the floor from below.
    just_below = round(rows[JANE].confidence_score - 0.01, 3)
    params = {"customer": JANE, "include": "possible", "min_confidence": just_below}
    r = await agent.client.get("/api/clarity/sessions", params=params)
    assert ids["anon"] in [i["id"] for i in r.json()["items"]] and r.json()["possible"]["items"] == []

    # Viewers see them with the e-mail masked, as elsewhere.
    viewer = await signed_in("viewer", email="viewer@example.com")
    r = await viewer.client.get("/api/clarity/sessions", params={"customer": JANE, "include": "possible"})
    assert r.status_code == 200
    shown = r.json()["possible"]["items"][0]["mapping"]["customerEmail"]
    assert shown != JANE and "@" in shown and "jane" not in shown

    # Hostile or unknown values: a 400 naming the field.
    r = await agent.client.get("/api/clarity/sessions", params={"customer": JANE, "include": "<script>"})
    assert r.status_code == 400 and r.json()["field"] == "include"

    entries = await _audit(sessionmaker, "sessions_listed")
    assert any(e.detail.get("possible") == 1 for e in entries)


async def test_possible_floor_is_configurable(signed_in, sessionmaker, settings):
    ids = await _family(sessionmaker, "anon")
    agent = await signed_in("agent")
    settings.possible_floor = 0.4  # the app reads its own settings object
    r = await agent.client.get("/api/clarity/sessions", params={"customer": JANE, "include": "possible"})
    assert r.json()["possible"]["items"] == []
    settings.possible_floor = 0.2
    r = await agent.client.get("/api/clarity/sessions", params={"customer": JANE, "include": "possible"})
    assert [i["id"] for i in r.json()["possible"]["items"]] == [ids["anon"]]


async def test_automated_sessions_are_never_possible(signed_in, sessionmaker):
    await _family(sessionmaker)
    async with sessionmaker() as db:
        bot = await send(db, Batch("fam", "bot", 3 * DAY, 10, ip="10.9.9.9", automated="webdriver"))
        assert await link_of(db, "fam", "bot") == {}
    agent = await signed_in("agent")
    r = await agent.client.get("/api/clarity/sessions", params={"customer": JANE, "include": "possible"})
    assert r.json()["possible"]["items"] == []
    r = await agent.client.post(
        f"/api/clarity/sessions/{bot.id}/confirm", json={"customerEmail": JANE}, headers=agent.headers()
    )
    assert r.status_code == 404 and r.json()["field"] == "customerEmail"


async def _audit(sessionmaker: Any, *actions: str) -> list[AuditEntry]:
    async with sessionmaker() as db:
        return list((await db.scalars(select(AuditEntry).where(AuditEntry.action.in_(actions)))).all())


async def _possible_ids(agent: Any, email: str) -> list[str]:
    r = await agent.client.get("/api/clarity/sessions", params={"customer": email, "include": "possible"})
    assert r.status_code == 200, r.text
    return [i["id"] for i in r.json()["possible"]["items"]]


async def test_confirm_and_dismiss_survive_rescoring(signed_in, sessionmaker, settings):
    ids = await _family(sessionmaker, "a1", "a2")
    async with sessionmaker() as db:
        before_john = (await link_of(db, "fam", "a2"))[JOHN].confidence_score
        engine_said = (await link_of(db, "fam", "a1"))[JANE].confidence_score
    agent = await signed_in("agent")
    assert sorted(await _possible_ids(agent, JANE)) == sorted(ids.values())

    r = await agent.client.post(
        f"/api/clarity/sessions/{ids['a1']}/confirm",
        json={"customerEmail": JANE, "reason": "she described this visit on the phone"},
        headers=agent.headers(),
    )
    assert r.status_code == 200, r.text
    assert (r.json()["decision"], r.json()["confidence"], r.json()["method"]) == ("link", 1.0, "manual")
    assert r.json()["evidence"][0]["reason"].startswith("confirmed by ")
    r = await agent.client.post(
        f"/api/clarity/sessions/{ids['a2']}/dismiss", json={"customerEmail": JANE}, headers=agent.headers()
    )
    assert r.status_code == 200, r.text
    assert r.json()["decision"] == "unlink" and "not this customer" in r.json()["evidence"][0]["reason"]
    # A second decision through these routes is refused: the pair is no longer undecided.
    r = await agent.client.post(
        f"/api/clarity/sessions/{ids['a2']}/confirm", json={"customerEmail": JANE}, headers=agent.headers()
    )
    assert r.status_code == 409 and r.json()["field"] == "customerEmail"

    # New evidence: Jane signs in on the family computer again, and both visits send another batch.
    # Every session of the browser is re-scored; the agent's decisions stay.
    async with sessionmaker() as db:
        await send(db, Batch("fam", "j2", 6 * DAY, 10, ip="10.0.0.2", email=JANE))
        await send(db, Batch("fam", "a1", 3 * DAY, 25, ip="10.9.9.9"))
        await send(db, Batch("fam", "a2", 4 * DAY, 25, ip="10.9.9.9"))
        a1, a2 = await link_of(db, "fam", "a1"), await link_of(db, "fam", "a2")
    assert a1[JANE].manual_decision == "link" and a1[JANE].confidence_score == 1.0
    assert JOHN not in a1  # a manual link wins over every automatic one
    assert a2[JANE].manual_decision == "unlink" and a2[JANE].confidence_score == 0.0
    # The dismissal is negative evidence: without Jane, John is the likelier owner of the visit.
    assert a2[JOHN].manual_decision is None and a2[JOHN].confidence_score > before_john

    r = await agent.client.get("/api/clarity/sessions", params={"customer": JANE, "include": "possible"})
    assert ids["a1"] in [i["id"] for i in r.json()["items"]]
    assert r.json()["possible"]["items"] == []
    assert ids["a2"] not in [i["id"] for i in r.json()["items"]]

    by_action = {e.action: e for e in await _audit(sessionmaker, "mapping.confirm", "mapping.dismiss")}
    assert by_action["mapping.confirm"].target == audit.customer_ref(JANE, settings)
    assert by_action["mapping.confirm"].actor_email == agent.agent.email
    assert by_action["mapping.confirm"].detail == {
        "session_id": ids["a1"],
        "reason": "she described this visit on the phone",
    }
    assert by_action["mapping.dismiss"].detail["reason"] == "not this customer"
    assert JANE not in str(by_action["mapping.dismiss"].detail)

    # Both are labels of what the engine had said, counted apart as decisions on possible sessions.
    async with sessionmaker() as db:
        report = await calibration_report(db, threshold=0.5, possible_floor=0.2)
        rows = await link_of(db, "fam", "a1")
    assert rows[JANE].auto_confidence == engine_said
    assert report.labels == 2 and report.missed == 1
    assert (report.possible_labels, report.possible_confirmed) == (2, 1)


async def test_confirm_and_dismiss_refuse_hostile_input(signed_in, sessionmaker, client):
    ids = await _family(sessionmaker, "anon")
    url = f"/api/clarity/sessions/{ids['anon']}/confirm"
    body = {"customerEmail": JANE}
    assert (await client.post(url, json=body)).status_code == 401
    viewer = await signed_in("viewer", email="viewer@example.com")
    assert (await viewer.client.post(url, json=body, headers=viewer.headers())).status_code == 403
    agent = await signed_in("agent")
    assert (await agent.client.post(url, json=body)).status_code == 403  # no CSRF token
    cases = [
        (url, {"customerEmail": "not-an-email"}, 400, "customerEmail"),
        (url, {"customerEmail": JANE, "reason": "x" * 501}, 400, "reason"),
        (url, {"customerEmail": JANE, "reason": "a\x00b"}, 400, "reason"),  # PostgreSQL cannot store it
        (url, {"customerEmail": JANE, "decision": "link"}, 400, "decision"),
        (url, {}, 400, "customerEmail"),
        ("/api/clarity/sessions/not-a-uuid/dismiss", body, 400, "session_id"),
        ("/api/clarity/sessions/00000000-0000-0000-0000-000000000000/dismiss", body, 404, "sessionId"),
        (url, {"customerEmail": "nobody@acme.io"}, 404, "customerEmail"),  # no link to this customer
    ]
    for path, payload, status, field in cases:
        r = await agent.client.post(path, json=payload, headers=agent.headers())
        assert (r.status_code, r.json().get("field")) == (status, field), (path, payload, r.text)
    hx = {**agent.headers(), "HX-Request": "true"}
    for form, field in (
        ({"session_id": ids["anon"], "customer_email": JANE, "reason": "a\x00b"}, "reason"),
        ({"session_id": ids["anon"], "customer_email": "<b>x</b>"}, "customer_email"),
    ):
        r = await agent.client.post("/partials/mapping/dismiss", data=form, headers=hx)
        assert (r.status_code, r.json()["field"]) == (400, field)
    async with sessionmaker() as db:
        assert all(row.manual_decision is None for row in (await link_of(db, "fam", "anon")).values())


async def test_the_panel_shows_them_collapsed_and_agents_decide_there(signed_in, sessionmaker):
    ids = await _family(sessionmaker, "a1", "a2")
    agent = await signed_in("agent")
    r = await agent.client.get("/partials/sessions", params={"customer": JANE})
    assert r.status_code == 200
    assert '<details class="sessions-possible"' in r.text
    assert "2 possible sessions — same browser, no sign-in" in r.text
    assert r.text.count('class="possible-session"') == 2
    assert 'hx-post="/partials/mapping/confirm"' in r.text and 'hx-post="/partials/mapping/dismiss"' in r.text

    # Viewers see the possible sessions, masked and without the buttons; they cannot post.
    viewer = await signed_in("viewer", email="viewer@example.com")
    r = await viewer.client.get("/partials/sessions", params={"customer": JOHN})
    assert "2 possible sessions" in r.text and "/partials/mapping/confirm" not in r.text
    assert JOHN not in r.text
    r = await viewer.client.post(
        "/partials/mapping/dismiss",
        data={"session_id": ids["a1"], "customer_email": JOHN},
        headers=viewer.headers(),
    )
    assert r.status_code == 403

    hx = {**agent.headers(), "HX-Request": "true"}
    r = await agent.client.post(
        "/partials/mapping/dismiss",
        data={"session_id": ids["a2"], "customer_email": JANE, "reason": "<img src=x onerror=alert(1)>"},
        headers=hx,
    )
    assert r.status_code == 200, r.text
    assert "Dismissed: not this customer" in r.text and "<img" not in r.text
    r = await agent.client.post(
        "/partials/mapping/confirm", data={"session_id": ids["a1"], "customer_email": JANE}, headers=hx
    )
    assert r.status_code == 200 and "Confirmed" in r.text
    r = await agent.client.post(
        "/partials/mapping/confirm", data={"session_id": "nope", "customer_email": JANE}, headers=hx
    )
    assert r.status_code == 400 and r.json()["field"] == "session_id"

    r = await agent.client.get("/partials/sessions", params={"customer": JANE})
    assert "sessions-possible" not in r.text  # none left
    assert f'data-session-id="{ids["a1"]}"' in r.text  # the confirmed one is listed
    async with sessionmaker() as db:
        assert (await link_of(db, "fam", "a2"))[JANE].reason == "<img src=x onerror=alert(1)>"
