"""The calibration report from agents' decisions (pure): bands, Wilson intervals, disagreement, misses."""

from __future__ import annotations

import random

from supportlens.mapping.calibration import Label, as_json, as_lines, band_of, report, wilson_interval, z_for


def test_wilson_interval_matches_the_textbook_values():
    # 8 of 10 at 95 %: (0.490, 0.943) (Wilson 1927; e.g. Agresti & Coull 1998).
    low, high = wilson_interval(8, 10, z_for(0.05))
    assert round(low, 3) == 0.490 and round(high, 3) == 0.943
    assert wilson_interval(0, 0, 1.96) == (0.0, 1.0)
    low, high = wilson_interval(10, 10, 1.96)
    assert high == 1.0 and 0.69 < low < 0.73


def test_bands_hold_their_edges():
    assert band_of(0.0) == 0 and band_of(0.49) == 1 and band_of(0.5) == 2
    assert band_of(0.95) == 7 and band_of(1.0) == 7


def test_an_overconfident_band_disagrees_and_a_right_one_agrees():
    labels = [Label("ip_match", 0.92, correct=i < 30) for i in range(60)]  # engine 92 %, agents 50 %
    labels += [Label("device_link", 0.75, correct=i < 37) for i in range(50)]  # engine 75 %, agents 74 %
    r = report(labels, threshold=0.5)
    by_low = {b.low: b for b in r.bands}
    assert by_low[0.9].disagrees and by_low[0.9].precision == 0.5
    assert not by_low[0.7].disagrees and by_low[0.7].judged
    assert [b.low for b in r.disagreeing] == [0.9]
    methods = {m.method: m for m in r.listed_by_method}
    assert (methods["ip_match"].confirmed, methods["ip_match"].labels) == (30, 60)
    assert "DISAGREES" in "\n".join(as_lines(r))
    assert as_json(r)["bands"][-1]["disagrees"] is True  # type: ignore[index]


def test_few_labels_are_shown_but_never_judged():
    r = report([Label("ip_match", 0.95, correct=False)] * 5, threshold=0.5)
    (band,) = r.bands
    assert band.labels == 5 and not band.judged and not band.disagrees


def test_missed_links_are_counted_apart():
    r = report(
        [
            Label(None, None, correct=True),  # the engine had nothing: a miss
            Label("ip_match", 0.3, correct=True),  # below the threshold: a miss, and a calibration point
            Label("ip_match", 0.3, correct=False),  # below and rightly so
            Label(None, None, correct=False),  # an unlink of a pair never scored: nothing to judge
            Label("email_match", 1.0, correct=True),
        ],
        threshold=0.5,
    )
    assert r.missed == 2 and r.unscored_unlinks == 1 and r.labels == 3
    assert [(m.method, m.labels) for m in r.listed_by_method] == [("email_match", 1)]


def _calibrated_labels(rng: random.Random, n: int) -> list[Label]:
    labels = []
    for _ in range(n):
        p = rng.uniform(0.05, 1.0)
        labels.append(Label("device_link", p, correct=rng.random() < p))
    return labels


def test_well_calibrated_labels_are_rarely_called_wrong():
    """Labels drawn with exactly the engine's confidence: any disagreement is a false alarm, which the
    family-wise level holds to 5 % of reports (fixed seeds: the same 300 reports every run)."""
    false_alarms = sum(
        bool(report(_calibrated_labels(random.Random(seed), 400), threshold=0.5).disagreeing)
        for seed in range(300)
    )
    assert false_alarms / 300 <= 0.07


def test_a_miscalibrated_engine_is_caught():
    """The same draws, but the engine says 0.15 more than the truth: nearly every report says so."""
    caught = 0
    for seed in range(50):
        rng = random.Random(seed)
        labels = []
        for _ in range(400):
            p = rng.uniform(0.05, 0.85)
            labels.append(Label("ip_match", p + 0.15, correct=rng.random() < p))
        caught += bool(report(labels, threshold=0.5).disagreeing)
    assert caught >= 45


def test_decisions_on_possible_sessions_are_counted_apart():
    labels = [
        Label(method="device_link", confidence=0.35, correct=True),  # a confirmed possible session
        Label(method="ip_match", confidence=0.25, correct=False),  # a dismissed one
        Label(method="ip_match", confidence=0.21, correct=False),
        Label(method="ip_match", confidence=0.1, correct=True),  # below the floor: a plain miss
        Label(method="device_link", confidence=0.8, correct=False),  # listed: not possible
    ]
    r = report(labels, threshold=0.5, possible_floor=0.2)
    assert (r.possible_labels, r.possible_confirmed) == (3, 1)
    assert r.labels == 5 and r.missed == 2
    assert "Possible sessions decided (confidence 0.20 to 0.50): 1 confirmed, 2 dismissed" in as_lines(r)
    assert as_json(r)["possible"] == {"floor": 0.2, "labels": 3, "confirmed": 1}
    assert report(labels, threshold=0.5).possible_labels == 0  # not asked
