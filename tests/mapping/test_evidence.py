"""The indexed evidence gathering gives exactly what the plain definition gives, in far less time.

`plain_gather` is the definition written the obvious way (a pass over every sighting for every
session, and over every visit's sightings for every session: quadratic in a browser's history);
`gather` must agree with it on random facts and on a whole synthetic world.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from supportlens.mapping import scoring
from supportlens.mapping.evidence import (
    BROWSER_MAX_IP_DEVICES,
    NEAR_WINDOW_MINUTES,
    BrowserHistory,
    Candidate,
    SessionFacts,
    Sighting,
    SightingIndex,
    Visit,
    gather,
    interval_gap_minutes,
    sessions_bucket,
)
from supportlens_sandbox.mapping_world import build_world, offline_facts

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def plain_gather(facts: SessionFacts, *, exclude: Iterable[str] = ()) -> dict[str, Candidate]:
    excluded = set(exclude)
    out: dict[str, Candidate] = {}
    device = sorted(s for s in facts.device_sightings.all if s.session_id != facts.session_id)
    for s in device:
        if s.email in excluded:
            continue
        c = out.setdefault(s.email, Candidate(email=s.email))
        c.dev_n += 1
        c.dev_total = len(device)
        c.dev_customers = len({x.email for x in device})
        gap = abs((s.start - facts.start).total_seconds()) / 3600.0
        if c.dev_gap_hours is None or gap < c.dev_gap_hours:
            c.dev_gap_hours, c.dev_nearest = gap, s.start
    for c in out.values():
        c.dev_before_first = facts.start < min(s.start for s in device if s.email == c.email)
    on_this_browser = {s.session_id for s in device}
    signers_home = False
    if facts.ip_sightings is not None:
        for s in sorted(facts.ip_sightings.all):
            if s.session_id == facts.session_id or s.email in excluded:
                continue
            c = out.setdefault(s.email, Candidate(email=s.email))
            c.home_n += 1
            signed_here = any(x.email == s.email for x in device)
            signers_home |= signed_here and s.session_id not in on_this_browser
            c.ip_customers, c.ip_devices = facts.ip_customers, facts.ip_devices
            gap = interval_gap_minutes(facts.start, facts.end, s.start, s.end)
            if gap <= NEAR_WINDOW_MINUTES and (c.near_gap_minutes is None or gap < c.near_gap_minutes):
                c.near_gap_minutes, c.near_after = gap, facts.start >= s.start
    visits = facts.browser.visits
    own = {v.session_id for v in visits} | {facts.session_id}
    networks: set[str] = set()
    shared: dict[str, set[str]] = {}
    near: dict[str, int] = {}
    for v in visits:
        if v.session_id == facts.session_id or v.sightings is None or v.ip_key is None:
            continue
        elsewhere = v.ip_key != facts.ip_key and v.ip_devices <= BROWSER_MAX_IP_DEVICES
        if elsewhere:
            networks.add(v.ip_key)
        near_here: set[str] = set()
        for s in v.sightings.all:
            if s.session_id in own or s.email in excluded:
                continue
            if elsewhere:
                shared.setdefault(s.email, set()).add(v.ip_key)
            if interval_gap_minutes(v.start, v.end, s.start, s.end) <= NEAR_WINDOW_MINUTES:
                near_here.add(s.email)
        for email in near_here:
            near[email] = near.get(email, 0) + 1
    signers = {s.email for s in device} - excluded
    for email in set(shared) | set(near) if len(signers) < 2 else ():
        c = out.setdefault(email, Candidate(email=email))
        c.browser_networks = len(shared.get(email, ()))
        c.browser_networks_total = len(networks)
        c.browser_near = near.get(email, 0)
    sessions = max((2**k for k in range(20) if 2**k <= len(visits)), default=0)
    for c in out.values():
        c.browser_signers = len(signers)
        c.browser_sessions = sessions
        c.signers_home = signers_home
    return out


IDS = [uuid.UUID(int=i) for i in range(12)]
EMAILS = ["a@x.io", "b@x.io", "c@x.io"]


@st.composite
def facts(draw: st.DrawFn) -> tuple[SessionFacts, set[str]]:
    def interval() -> tuple[datetime, datetime]:
        # Coarse minutes, so ties in start and in gap happen often; some sessions run for hours.
        start = T0 + timedelta(minutes=draw(st.integers(0, 16)) * 15)
        return start, start + timedelta(minutes=draw(st.sampled_from([0, 5, 30, 60, 300])))

    def sightings(n: int) -> SightingIndex:
        return SightingIndex(
            Sighting(*interval(), session_id=draw(st.sampled_from(IDS)), email=draw(st.sampled_from(EMAILS)))
            for _ in range(draw(st.integers(0, n)))
        )

    networks = {key: draw(st.none() | st.just(sightings(6))) for key in ("home", "office", "cafe")}
    crowd = {key: draw(st.integers(1, BROWSER_MAX_IP_DEVICES + 2)) for key in networks}
    me = draw(st.sampled_from(IDS))
    start, end = interval()
    here = draw(st.sampled_from([*networks, None]))
    visits = [
        Visit(
            IDS[i],
            *interval(),
            ip_key=key,
            sightings=networks[key] if key else None,
            ip_devices=crowd[key] if key else 0,
        )
        for i in draw(st.lists(st.integers(0, len(IDS) - 1), unique=True, max_size=8))
        for key in [draw(st.sampled_from([*networks, None]))]
    ]
    if draw(st.booleans()):  # the engine's history holds the session itself, at its own network
        visits = [v for v in visits if v.session_id != me]
        visits.append(
            Visit(
                me,
                start,
                end,
                ip_key=here,
                sightings=networks[here] if here else None,
                ip_devices=crowd[here] if here else 0,
            )
        )
    f = SessionFacts(
        session_id=me,
        start=start,
        end=end,
        device_sightings=sightings(6),
        ip_sightings=networks[here] if here else None,
        ip_customers=draw(st.integers(0, 11)),
        ip_devices=crowd[here] if here else 0,
        ip_key=here,
        browser=BrowserHistory(visits),
    )
    return f, set(draw(st.lists(st.sampled_from(EMAILS), max_size=1)))


@settings(max_examples=400, deadline=None)
@given(facts())
def test_indexed_gather_matches_the_plain_definition(case: tuple[SessionFacts, set[str]]) -> None:
    f, excluded = case
    assert gather(f, exclude=excluded) == plain_gather(f, exclude=excluded)


def test_indexed_gather_matches_the_plain_definition_on_a_world() -> None:
    world = build_world(7, 300)
    checked = 0
    for _, f in offline_facts(world):
        assert gather(f) == plain_gather(f)
        checked += 1
    assert checked > 1000


# ---- browsers several customers sign in on (family, shop and library computers) -------------------


def _signed(n: int, email: str, day: int) -> Sighting:
    start = T0 + timedelta(days=day, minutes=n)
    return Sighting(start, start + timedelta(minutes=10), IDS[n], email)


def _on_browser(device: list[Sighting], *, near: str | None = None) -> SessionFacts:
    """An anonymous session on a browser with these sign-ins; `near`: a customer who signed in minutes
    before on another browser that this browser's other visit shared a network with."""
    me = IDS[11]
    start = T0 + timedelta(days=5)
    visits = [
        Visit(
            me, start, start + timedelta(minutes=10), ip_key="home", sightings=SightingIndex(), ip_devices=2
        )
    ]
    if near is not None:
        other = T0 + timedelta(days=6)
        signed = SightingIndex([Sighting(other, other + timedelta(minutes=5), IDS[10], near)])
        visits.append(
            Visit(IDS[9], other, other + timedelta(minutes=20), ip_key="cafe", sightings=signed, ip_devices=2)
        )
    return SessionFacts(
        session_id=me,
        start=start,
        end=start + timedelta(minutes=10),
        device_sightings=SightingIndex(device),
        ip_key="home",
        browser=BrowserHistory(visits),
    )


def test_a_browser_one_customer_signs_in_on_links_by_default() -> None:
    scored = scoring.score(gather(_on_browser([_signed(n, "a@x.io", n) for n in range(4)])))
    assert scored["a@x.io"].confidence >= 0.9
    assert scored["a@x.io"].method == "device_link"


def test_a_browser_two_customers_sign_in_on_is_no_ones_by_default() -> None:
    # a@x.io signed in on it six times, b@x.io once: still a family computer, not a@x.io's.
    device = [_signed(n, "a@x.io", n) for n in range(6)] + [_signed(6, "b@x.io", 6)]
    cands = gather(_on_browser(device, near="c@x.io"))
    assert {c.browser_signers for c in cands.values()} == {2}
    # Where the shared browser goes says nothing about whose it is: no browser evidence for c@x.io.
    assert set(cands) == {"a@x.io", "b@x.io"}
    scored = scoring.score(cands)
    assert max(s.confidence for s in scored.values()) <= scoring.SHARED_BROWSER_MAX < 0.5
    assert scored["a@x.io"].confidence > scored["b@x.io"].confidence  # still ranked, as a possible session
    # The evidence item still says what the device evidence alone says.
    assert float(scored["a@x.io"].evidence[0]["score"]) > scoring.SHARED_BROWSER_MAX


def test_a_customer_ruled_out_does_not_make_the_browser_shared() -> None:
    device = [_signed(n, "a@x.io", n) for n in range(3)] + [_signed(3, "b@x.io", 3)]
    cands = gather(_on_browser(device, near="c@x.io"), exclude={"b@x.io"})
    assert cands["a@x.io"].browser_signers == 1
    assert "c@x.io" in cands  # browser evidence is read again
    assert scoring.score(cands)["a@x.io"].confidence > scoring.SHARED_BROWSER_MAX


def _with_visits(f: SessionFacts, anonymous: int) -> SessionFacts:
    """The same session on a browser with `anonymous` more sessions no one signed in on, at its address."""
    day = T0 + timedelta(days=20)
    more = [
        Visit(uuid.UUID(int=1000 + n), at, at + timedelta(minutes=9), "home", SightingIndex(), ip_devices=2)
        for n in range(anonymous)
        for at in [day + timedelta(hours=n)]
    ]
    f.browser = BrowserHistory([*f.browser.visits, *more])
    return f


def test_a_shop_computer_one_customer_signed_in_on_is_not_theirs_by_default() -> None:
    # One sign-in among 40 sessions: a shop's or a library's computer, not a@x.io's own browser.
    shop = gather(_with_visits(_on_browser([_signed(0, "a@x.io", 0)]), 39))
    assert shop["a@x.io"].browser_sessions == 32  # 40 sessions, rounded down to a power of two
    assert scoring.score(shop)["a@x.io"].confidence < 0.5
    # The same sign-in on a browser with 4 sessions (a person's own) still links by default.
    own = gather(_with_visits(_on_browser([_signed(0, "a@x.io", 0)]), 3))
    assert scoring.score(own)["a@x.io"].confidence >= 0.9
    # Up to 8 sessions per sign-in the browser's session count changes nothing.
    eight = gather(_with_visits(_on_browser([_signed(n, "a@x.io", n) for n in range(2)]), 14))
    assert scoring.features(eight["a@x.io"])[scoring.FEATURES.index("device_log_unsigned")] == 0.0


def test_the_engine_re_scores_a_browser_only_where_its_session_count_moves_the_score() -> None:
    # The scorer reads the count rounded down to a power of two, and nothing of it up to 8 per sign-in.
    moves = [n for n in range(1, 600) if scoring.unsigned_moves(n, 1)]
    assert moves == [16, 32, 64, 128, 256, 512]
    assert [n for n in range(1, 600) if scoring.unsigned_moves(n, 3)] == [32, 64, 128, 256, 512]
    assert not any(scoring.unsigned_moves(n, 0) for n in range(1, 600))
    for n in range(1, 600):  # between two marks the feature is the same
        if not scoring.unsigned_moves(n, 1) and n > 1:
            before = Candidate("a@x.io", dev_n=1, dev_total=1, browser_sessions=sessions_bucket(n - 1))
            now = replace(before, browser_sessions=sessions_bucket(n))
            assert scoring.features(before) == scoring.features(now)


def test_a_family_computer_at_its_signers_home_is_a_possible_session() -> None:
    # a@x.io and b@x.io sign in on the computer; behind its address a@x.io also signs in on a phone.
    device = [_signed(0, "a@x.io", 0), _signed(1, "b@x.io", 1)]
    phone = T0 + timedelta(days=3)
    at_home = SightingIndex([*device, Sighting(phone, phone + timedelta(minutes=5), IDS[8], "a@x.io")])
    f = _on_browser(device)
    f.ip_sightings, f.ip_customers, f.ip_devices = at_home, 2, 3
    home = scoring.score(gather(f))
    # The same computer where no signer signs in on another browser: a shop's, or a library's.
    f.ip_sightings = SightingIndex(device)
    shop = scoring.score(gather(f))
    for email in ("a@x.io", "b@x.io"):
        assert scoring.SHARED_BROWSER_MAX >= home[email].confidence >= 0.2
        assert home[email].confidence > shop[email].confidence


@settings(max_examples=300, deadline=None)
@given(facts())
def test_no_session_on_a_shared_browser_is_listed_by_default(case: tuple[SessionFacts, set[str]]) -> None:
    f, excluded = case
    signers = {s.email for s in f.device_sightings if s.session_id != f.session_id} - excluded
    scored = scoring.score(gather(f, exclude=excluded))
    if len(signers) >= 2:
        assert all(s.confidence <= scoring.SHARED_BROWSER_MAX for s in scored.values())
