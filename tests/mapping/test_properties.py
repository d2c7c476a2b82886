"""Properties of the incremental engine: re-sending changes nothing; arrival order does not matter; and
with the mapping worker in the loop (it maps a batch after later ones are stored, and one job may stand
for several batches of a session) the links are those of mapping each batch as it arrives."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import supportlens.mapping.engine as engine
from supportlens.mapping import evidence, facts
from supportlens.tasks.queue import Runtime, run_until_empty
from tests.mapping.helpers import Batch, links, send, store, wipe

DEVICES = ["d0", "d1", "d2", "d3"]
IPS = ["10.0.0.1", "10.0.0.2", "10.0.0.3", None]
EMAILS = [None, None, "a@x.io", "b@x.io", "c@x.io"]


@st.composite
def worlds(
    draw: st.DrawFn,
    span_minutes: int = 6 * 24 * 60,
    ips: list[str | None] = IPS,
    devices: list[str] = DEVICES,
    sessions: int = 6,
) -> list[Batch]:
    """Sessions with a fixed browser and IP, each sent as 1-3 batches, some of them signed in,
    starting within `span_minutes` of each other."""
    batches: list[Batch] = []
    for n in range(draw(st.integers(2, sessions))):
        device = draw(st.sampled_from(devices))
        ip = draw(st.sampled_from(ips))
        start = draw(st.integers(0, span_minutes))
        for k in range(draw(st.integers(1, 3))):
            batches.append(
                Batch(
                    device,
                    f"s{n}",
                    start + draw(st.integers(0, 30)),
                    draw(st.integers(1, 40)),
                    ip=ip,
                    email=draw(st.sampled_from(EMAILS)) if k == 0 or draw(st.booleans()) else None,
                )
            )
    return batches


@pytest.fixture
def small_caps(monkeypatch):
    # Tiny caps so that crowded addresses (and the moment an address becomes crowded) are exercised too.
    for module in (engine, facts):  # the engine decides from them, the counters stop at them
        monkeypatch.setattr(module, "MAX_IP_CUSTOMERS", 2)
        monkeypatch.setattr(module, "MAX_IP_DEVICES", 3)
    # ... and an address stops counting as a browser's "other network" once a third browser uses it.
    monkeypatch.setattr(evidence, "BROWSER_MAX_IP_DEVICES", 2)


async def _snapshot(db) -> dict:
    return await links(db, with_evidence=True)


PROPERTY = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY
@given(batches=worlds())
async def test_resending_the_same_events_changes_nothing(db, small_caps, batches):
    await wipe(db)
    for b in batches:
        await send(db, b)
    first = await _snapshot(db)
    for b in batches:
        await send(db, b)
    assert await _snapshot(db) == first


async def _same_links_in_any_order(db, data, batches) -> None:
    await wipe(db)
    for b in batches:
        await send(db, b)
    in_order = await _snapshot(db)
    await wipe(db)
    for b in data.draw(st.permutations(batches)):
        await send(db, b)
    assert await _snapshot(db) == in_order


@PROPERTY
@given(data=st.data(), batches=worlds())
async def test_arrival_order_does_not_change_the_links(db, small_caps, data, batches):
    await _same_links_in_any_order(db, data, batches)


@settings(PROPERTY, max_examples=60)
@given(data=st.data(), batches=worlds(span_minutes=120, ips=["10.0.0.9"]))
async def test_arrival_order_does_not_change_the_links_minutes_apart(db, small_caps, data, batches):
    # Sessions close in time behind one IP: every batch that moves a signed-in session's end re-scores
    # only the anonymous sessions whose gap to it can change, and that must be all of them.
    await _same_links_in_any_order(db, data, batches)


@settings(PROPERTY, max_examples=40)
@given(data=st.data(), batches=worlds(span_minutes=600, devices=["d0", "d1"], sessions=9))
async def test_arrival_order_does_not_change_the_links_across_a_browsers_networks(
    db, small_caps, data, batches
):
    # Few browsers, each visiting several addresses within hours: the evidence a browser's other
    # visits give must be re-scored whenever any of those addresses or visits changes.
    await _same_links_in_any_order(db, data, batches)


@settings(PROPERTY, max_examples=40)
@given(data=st.data(), batches=worlds(span_minutes=600, devices=["d0", "d1"], sessions=9))
async def test_arrival_order_does_not_change_the_links_as_browsers_and_addresses_pass_their_caps(
    db, small_caps, monkeypatch, data, batches
):
    # A browser or an address past its session cap loses its evidence: whichever batch takes it past,
    # all the sessions it touched must end up scored without it.
    monkeypatch.setattr(evidence, "MAX_BROWSER_SESSIONS", 3)
    monkeypatch.setattr(evidence, "MAX_IP_SESSIONS", 4)
    await _same_links_in_any_order(db, data, batches)


@pytest.fixture
def runtime(settings, engine, sessionmaker) -> Runtime:
    return Runtime(settings=settings, engine=engine, sessionmaker=sessionmaker)


async def _worker_maps_as_ingest_did(db, runtime, data, batches, *, twice: bool = False) -> None:
    await wipe(db)
    for b in batches:
        await send(db, b)
    mapped_on_arrival = await _snapshot(db)
    await wipe(db)
    order = data.draw(st.permutations(batches + batches if twice else batches))
    # The worker runs after some batches (how far behind ingest it is varies), and at the end.
    runs = data.draw(st.sets(st.integers(0, len(order) - 1), max_size=4))
    for i, b in enumerate(order):
        await store(db, b)
        if i in runs:
            await run_until_empty(runtime, queues=("mapping",))
    await run_until_empty(runtime, queues=("mapping",))
    db.expire_all()
    assert await _snapshot(db) == mapped_on_arrival


@settings(PROPERTY, max_examples=12)
@given(data=st.data(), batches=worlds(span_minutes=600, devices=["d0", "d1"], sessions=9))
async def test_the_worker_behind_ingest_gives_the_links_of_mapping_on_arrival(
    db, small_caps, runtime, data, batches
):
    await _worker_maps_as_ingest_did(db, runtime, data, batches)


@settings(PROPERTY, max_examples=6)
@given(data=st.data(), batches=worlds())
async def test_the_worker_behind_ingest_ignores_re_sent_batches(db, small_caps, runtime, data, batches):
    await _worker_maps_as_ingest_did(db, runtime, data, batches, twice=True)


async def test_snapshots_see_differences(db):
    """Guard: the comparison above would notice a changed link."""
    await send(db, Batch("d0", "s1", 0, 10, ip="10.0.0.1", email="a@x.io"))
    await send(db, Batch("d0", "s2", 600, 10, ip="10.0.0.1"))
    before = await _snapshot(db)
    await send(db, Batch("d0", "s3", 700, 10, ip="10.0.0.1", email="b@x.io"))
    assert await _snapshot(db) != before
