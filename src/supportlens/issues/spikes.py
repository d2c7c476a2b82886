"""Spikes: when one issue's (or one page's) rate rises far above its own baseline.

Model. A series is a count per bucket of `bucket_minutes` (5). Its baseline is an exponentially
weighted rate: `events` and `buckets` are sums of past counts and past buckets, each decayed by
half every `half_life_buckets` (12 = 1 hour), so the rate follows the day's rhythm (a steep
morning ramp lags less than a longer memory would) but not a burst. Counts join the baseline
only once they are older than the longest test window (so a rising spike never raises its own
baseline before it is tested), and not while an alert is open (so an incident does not become
the new normal, until `adopt_after_buckets`).

With a Gamma(`prior_events` + events, `prior_buckets` + buckets) belief about the rate, the
count of the next `w` buckets follows a negative binomial (the Gamma-Poisson predictive): a
young or sparse series gets a wide predictive, an old busy one gets close to Poisson. Error
counts are burstier than Poisson, so the series' own excess variance (squared distances from
the level of their time, decayed by half every `dispersion_half_life_buckets`, 72 = 6 hours)
gives a second Gamma shape, mean^2 / (variance - mean) by moments; the narrower (wider
predictive) of the two is used. For every
window `w` in `windows` (1, 2 and 3 buckets: 5, 10 and 15 minutes) the detector takes the
observed sum `x` and its upper tail `p = P(X >= x)`. It raises when, for some window,

    x >= min_count   and   x >= min_ratio * expected   and   p < alpha / len(windows)

`min_count` (5) keeps a handful of errors from ringing anyone; `min_ratio` (3) asks for "far
above", which a daily ramp in traffic is not; `alpha` (1e-6, Bonferroni-split over the windows)
bounds false alerts: about 3 * 2,016 tests per series-week give under 0.01 per series-week.

Hysteresis. Once raised, the alert stays open (no repeat) until `cooldown_buckets` (6: half an
hour) consecutive buckets look ordinary again (the longest window's tail above `clear_p`, 0.05);
only then can the series raise again. A level still high after `adopt_after_buckets` (72: six
hours) is the new normal and joins the baseline, so the alert can close. A series raises
nothing until `warmup_buckets` (12: an hour) of baseline exist: a brand-new issue is `new`, not
a spike.

Limits, by arithmetic rather than by choice: at 5x a baseline of a few events an hour, ten
minutes hold one or two events, below `min_count`; such issues are caught later (bench/issues.py
reports the delay per baseline band).

Pure: the state is a small dataclass the caller stores between buckets.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class SpikeParams:
    bucket_minutes: int = 5
    windows: tuple[int, ...] = (1, 2, 3)
    half_life_buckets: float = 12.0
    prior_events: float = 0.1
    prior_buckets: float = 1.0
    min_count: int = 5
    min_ratio: float = 3.0
    alpha: float = 1e-6
    clear_p: float = 0.05
    cooldown_buckets: int = 6
    warmup_buckets: int = 12
    adopt_after_buckets: int = 72
    dispersion_half_life_buckets: float = 72.0


@dataclass(frozen=True)
class SpikeState:
    events: float = 0.0  # decayed sum of baseline counts
    buckets: float = 0.0  # decayed number of baseline buckets
    recent: tuple[tuple[int, bool], ...] = ()  # newest last: (count, seen while alerting)
    alerting: bool = False
    calm: int = 0  # consecutive ordinary buckets while alerting
    open_for: int = 0  # buckets since the open alert was raised
    # Decayed weight, sum of counts and sum of squared distances from the level of the time
    # (longer memory): how much burstier than Poisson the series is, the daily trend left out.
    m0: float = 0.0
    m1: float = 0.0
    m2: float = 0.0


@dataclass(frozen=True)
class Spike:
    """One alert: the window that crossed, what was seen and what was expected there."""

    window_buckets: int
    observed: int
    expected: float
    p_value: float


@dataclass(frozen=True)
class _Window:
    observed: int
    expected: float
    p_value: float


def negative_binomial_tail(x: int, shape: float, rate: float, exposure: float) -> float:
    """P(X >= x) for X ~ Poisson(lambda * exposure), lambda ~ Gamma(shape, rate)."""
    if x <= 0:
        return 1.0
    p = rate / (rate + exposure)  # "success" probability of the negative binomial
    q = 1.0 - p
    mean = shape * q / p
    if q <= 0.0:
        return 0.0

    def log_pmf(k: int) -> float:
        return (
            math.lgamma(k + shape)
            - math.lgamma(shape)
            - math.lgamma(k + 1)
            + shape * math.log(p)
            + k * math.log(q)
        )

    if x <= mean:  # the lower sum is short and the tail is large: 1 - P(X < x) is accurate
        below = sum(math.exp(log_pmf(k)) for k in range(x))
        return max(0.0, 1.0 - below)
    # Above the mean the terms fall geometrically: sum them from x until they stop counting.
    term = math.exp(log_pmf(x))
    total, k = term, x
    while term > total * 1e-12 and k < x + 100_000:
        term *= (k + shape) / (k + 1) * q
        total += term
        k += 1
    return min(1.0, total)


def step(
    state: SpikeState, count: int, params: SpikeParams = SpikeParams()
) -> tuple[SpikeState, Spike | None]:
    """Feed the count of the bucket that just closed; get the new state and maybe a new alert."""
    longest = max(params.windows)
    # Past `adopt_after_buckets` a level that stays high is the new normal: it joins the baseline.
    held_out = state.alerting and state.open_for < params.adopt_after_buckets
    recent = [*state.recent, (count, held_out)]
    counts = [c for c, _ in recent]
    shape = params.prior_events + state.events
    rate = params.prior_buckets + state.buckets
    # Counts burstier than Poisson (variance above the mean) widen the predictive: a Gamma mixing
    # shape of mean^2 / (variance - mean), by moments; the narrower of the two shapes is kept.
    if state.m0 > 0:
        mean = state.m1 / state.m0
        excess = state.m2 / state.m0 - mean  # m2: squared distances from the level at the time
        if excess > 0 and mean > 0:
            burst_shape = mean * mean / excess
            if burst_shape < shape:
                rate *= burst_shape / shape
                shape = burst_shape

    tests: list[tuple[int, _Window]] = []
    for w in params.windows:
        if len(counts) < w:
            continue
        observed = sum(counts[-w:])
        expected = shape / rate * w
        tests.append((w, _Window(observed, expected, negative_binomial_tail(observed, shape, rate, w))))

    spike: Spike | None = None
    alerting, calm = state.alerting, state.calm
    open_for = state.open_for + 1 if alerting else 0
    if not alerting and state.buckets >= params.warmup_buckets:
        threshold = params.alpha / len(params.windows)
        for w, t in tests:
            if (
                t.observed >= params.min_count
                and t.observed >= params.min_ratio * t.expected
                and t.p_value < threshold
            ):
                spike = Spike(window_buckets=w, observed=t.observed, expected=t.expected, p_value=t.p_value)
                alerting, calm, open_for = True, 0, 0
                break
    elif alerting:
        ordinary = not tests or tests[-1][1].p_value > params.clear_p
        calm = calm + 1 if ordinary else 0
        if calm >= params.cooldown_buckets:
            alerting, calm, open_for = False, 0, 0

    # Buckets older than the longest window join the baseline, unless seen during an alert.
    # The buckets that raised belong to the alert: they never join the baseline.
    if spike is not None:
        recent = [(c, True) for c, _ in recent]
    decay = 0.5 ** (1.0 / params.half_life_buckets)
    slow = 0.5 ** (1.0 / params.dispersion_half_life_buckets)
    events, buckets = state.events, state.buckets
    m0, m1, m2 = state.m0, state.m1, state.m2
    kept: deque[tuple[int, bool]] = deque(recent)
    while len(kept) > longest:
        old_count, during_alert = kept.popleft()
        if not during_alert:  # an alert's buckets neither count nor age the baseline
            level = events / buckets if buckets else float(old_count)
            events = events * decay + old_count
            buckets = buckets * decay + 1.0
            m0, m1, m2 = m0 * slow + 1.0, m1 * slow + old_count, m2 * slow + (old_count - level) ** 2
    new_state = replace(
        state,
        events=events,
        buckets=buckets,
        recent=tuple(kept),
        m0=m0,
        m1=m1,
        m2=m2,
        alerting=alerting,
        calm=calm,
        open_for=open_for,
    )
    return new_state, spike


def run(counts: list[int], params: SpikeParams = SpikeParams()) -> list[tuple[int, Spike]]:
    """The alerts a whole series raises, as (bucket index, spike)."""
    state = SpikeState()
    alerts: list[tuple[int, Spike]] = []
    for i, count in enumerate(counts):
        state, spike = step(state, count, params)
        if spike is not None:
            alerts.append((i, spike))
    return alerts
