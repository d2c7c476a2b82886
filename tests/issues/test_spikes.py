"""The spike detector: raises once on a real rise, not on noise, a daily ramp or a handful of events."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from supportlens.issues import spikes as spikes_module
from supportlens.issues.spikes import SpikeParams, SpikeState, negative_binomial_tail, run, step

DAY = 288  # five-minute buckets


def poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method, split so large means do not underflow.
    total = 0
    while mean > 0:
        part = min(mean, 30.0)
        mean -= part
        limit, k, p = math.exp(-part), 0, 1.0
        while True:
            p *= rng.random()
            if p < limit:
                break
            k += 1
        total += k
    return total


def test_negative_binomial_tail_matches_poisson_when_the_baseline_is_certain():
    # Gamma(shape = rate * mean) with a huge rate is a point mass: the predictive is Poisson(mean).
    mean = 4.0
    poisson_tail = 1 - sum(math.exp(-mean) * mean**k / math.factorial(k) for k in range(10))
    assert negative_binomial_tail(10, shape=mean * 1e7, rate=1e7, exposure=1) == pytest.approx(
        poisson_tail, rel=1e-3
    )
    assert negative_binomial_tail(0, 1, 1, 1) == 1.0
    # A young baseline (little exposure) is less sure: the same count is less surprising.
    assert negative_binomial_tail(10, shape=4.0, rate=1.0, exposure=1) > poisson_tail


def test_a_five_fold_rise_raises_once_and_not_again_while_it_stays_high():
    rng = random.Random(7)
    # Two quiet days: the first teaches the rhythm, the second how bursty the series is.
    counts = [poisson(rng, 2.0) for _ in range(2 * DAY)] + [poisson(rng, 10.0) for _ in range(36)]
    counts += [poisson(rng, 2.0) for _ in range(DAY)]
    alerts = run(counts)
    assert len(alerts) == 1
    index, spike = alerts[0]
    assert 2 * DAY <= index <= 2 * DAY + 2
    assert spike.observed >= 5 and spike.observed >= 3 * spike.expected


def test_it_can_raise_again_after_calming_down():
    rng = random.Random(11)
    quiet = [poisson(rng, 1.0) for _ in range(DAY)]
    burst = [poisson(rng, 8.0) for _ in range(12)]
    alerts = run(quiet + quiet + burst + quiet + burst + quiet)
    assert [i for i, _ in alerts] == [pytest.approx(2 * DAY, abs=2), pytest.approx(3 * DAY + 12, abs=2)]


def test_a_handful_of_errors_on_a_quiet_issue_is_not_a_spike():
    counts = [0] * DAY + [4] + [0] * 20  # 4 at once, below the minimum count
    assert run(counts) == []


def test_a_brand_new_series_does_not_alert_before_it_has_a_baseline():
    assert run([30, 30, 30, 30] + [30] * 10) == []


def test_a_level_that_stays_high_becomes_the_new_normal():
    rng = random.Random(3)
    counts = [poisson(rng, 2.0) for _ in range(2 * DAY)] + [poisson(rng, 12.0) for _ in range(2 * DAY)]
    counts += [poisson(rng, 60.0) for _ in range(12)]  # another five-fold rise, from the new level
    alerts = run(counts)
    assert 2 * DAY <= next(i for i, _ in alerts) <= 2 * DAY + 2
    assert any(i >= 4 * DAY for i, _ in alerts), "the second rise is measured against the adopted level"


def test_a_daily_traffic_ramp_is_not_a_spike():
    rng = random.Random(5)
    counts = []
    for bucket in range(7 * DAY):
        hour = (bucket % DAY) / 12
        mean = 6.0 * (1.2 + math.sin((hour - 9) / 24 * 2 * math.pi))  # 1.2 at night to 13 by day
        counts.append(poisson(rng, mean))
    assert run(counts) == []


@settings(max_examples=25, deadline=None)
@given(mean=st.floats(min_value=0.05, max_value=40.0), seed=st.integers(0, 2**32 - 1))
def test_steady_noise_rarely_alerts(mean, seed):
    rng = random.Random(seed)
    counts = [poisson(rng, mean) for _ in range(7 * DAY)]
    assert len(run(counts)) <= 1


def test_state_is_small_and_bounded():
    params = SpikeParams()
    state = SpikeState()
    for n in range(10_000):
        state, _ = step(state, n % 7, params)
    assert len(state.recent) == max(params.windows)


def test_bursty_noise_widens_the_predictive():
    """Each hour's rate drawn from a Gamma around the mean (burstier than Poisson): the detector
    measures the excess variance and does not take those steps for spikes, yet still sees a
    five-fold rise on a busy series at once (a quieter one is slower: see bench/issues.py)."""
    rng = random.Random(21)
    alerts = 0
    for per_bucket in (2.0, 8.0, 20.0):
        counts = []
        for bucket in range(7 * DAY):
            if bucket % 12 == 0:
                hour_rate = rng.gammavariate(8, per_bucket / 8)
            counts.append(poisson(rng, hour_rate))
        alerts += len(run(counts))
        if per_bucket == 20.0:
            spiked = counts[: 3 * DAY] + [poisson(rng, 5 * per_bucket) for _ in range(12)] + counts[3 * DAY :]
            assert [i for i, _ in run(spiked) if 3 * DAY <= i < 3 * DAY + 12][:1] == [3 * DAY]
    assert alerts <= 1


def rhythmic_bursty(rng: random.Random, per_hour: float, days: int) -> list[int]:
    """Counts with a daily wave (night at a quarter of the peak) and each hour's rate drawn from
    Gamma(shape 8) around it: the kind of series bench/issues.py measures."""
    counts: list[int] = []
    for bucket in range(days * DAY):
        if bucket % 12 == 0:
            hour = (bucket % DAY) / 12
            rhythm = 0.25 + 0.75 * (0.5 + 0.5 * math.cos((hour - 15) / 24 * 2 * math.pi))
            hour_rate = rng.gammavariate(8, per_hour * rhythm / 0.625 / 8)
        counts.append(poisson(rng, hour_rate / 12))
    return counts


def test_nothing_rings_before_the_series_has_seen_a_day(monkeypatch):
    rng = random.Random(17)
    counts = [poisson(rng, 2.0) for _ in range(DAY)]
    counts[36:48] = [poisson(rng, 40.0) for _ in range(12)]  # 20x at 03:00 on the first day
    assert run(counts) == []
    # The rule is what keeps the first day quiet: without it the same series rings at 03:00.
    monkeypatch.setattr(spikes_module, "day_seen", lambda state: True)
    assert [i for i, _ in run(counts)][:1] == [pytest.approx(36, abs=1)]


def test_the_burst_is_measured_on_the_noise_not_on_the_unseen_first_day():
    rng = random.Random(29)
    state = SpikeState()
    for i, count in enumerate(rhythmic_bursty(rng, 300.0, 4)):
        state, _ = step(state, count, day_bucket=i % DAY)
    burst = state.disp_num / state.disp_den  # the world's 1/k is 1/8
    assert 0.04 < burst < 0.25


def test_rhythmic_bursty_noise_rings_at_most_once_a_week():
    rng = random.Random(31)
    alerts = sum(len(run(rhythmic_bursty(rng, rate, 7))) for rate in (2.0, 12.0, 60.0, 300.0))
    assert alerts <= 1
