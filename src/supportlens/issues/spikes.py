"""Spikes: when one issue's (or one page's) rate rises far above its own baseline.

Model. A series is a count per bucket of `bucket_minutes` (5). Its expected count at a time of
day is `level * season(time of day)` (multiplicative Holt-Winters without trend):

- `season` is a factor per hour of the UTC day, learnt over days (each hour's decayed sum of
  counts over the decayed sum of the level at the time, half-life `season_half_life_days`, 3),
  shrunk towards 1 by `season_prior` (5 expected events), pooled with the neighbouring hours by
  a triangular kernel `season_smoothing_hours` (4) wide each side, and interpolated linearly
  between hour centres so the morning ramp is a slope, not a staircase. Errors follow traffic,
  and traffic follows the day; a baseline that does not know the day either lags the ramp (false
  alerts every morning) or has to be so short that it is as noisy as the hour it is tested on.
  The day's rhythm is smooth, so pooling seven hours costs little bias (a few per cent at the
  peak of a day-long wave) and cuts the noise of each hour's few days of history.
- `level` is the de-seasoned rate, an exponentially weighted mean with a long half-life
  (`level_half_life_buckets`, 288 = a day): with the day's shape in `season`, the level only
  has to follow slow drift, and the more hours it averages the less one unusually busy or
  quiet hour before a spike hides or invents it.

Counts join the baseline only once they are older than the longest test window (a rising spike
never raises its own baseline before it is tested), and not while an alert is open (an incident
does not become the new normal, until `adopt_after_buckets`).

The test. Real error counts are burstier than Poisson: an hour's rate wanders around the
baseline. The count of the next `w` buckets is modelled as Poisson(mu * Z) with Z ~ Gamma(k, k)
shared by the window: a negative binomial with mean mu and variance mu + mu^2 / k. 1/k is the
sum of two parts. The burst: measured on the series' own residuals by moments (decayed sums of
(y - mu)^2 - y - mu^2 * v over sums of mu^2, half-life `dispersion_half_life_buckets`, 2 days;
prior `dispersion_prior` (1/k = 1/4) worth `dispersion_prior_buckets`), where v is the relative
variance of the baseline itself (1 / the events behind the level, plus 1 / those behind the
hour's pooled season): the residuals carry both, and v is added back once (`estimate_weight`
1), not twice. Residuals count only once the day's rhythm has been seen: a prediction made
before every hour had some history measures the unknown rhythm, not the burstiness, and a
first day's ramp otherwise inflated 1/k for days. For every window `w` in `windows`
(1, 2 and 3 buckets: 5, 10 and 15 minutes) the detector takes the observed sum `x` and its upper
tail `p = P(X >= x)`, and raises when, for some window,

    x >= min_count   and   x >= min_ratio * mu_w   and   p < alpha / len(windows)

`min_count` (6) keeps a handful of errors from ringing anyone; `min_ratio` (2.5) asks for "far
above"; `alpha` is the false-alert budget per test, 1e-5 split over the windows (Bonferroni).
Multiple testing: a series is tested 12 times an hour on 3 windows, but the looks within an hour
share its burst Z, so they are far from independent and the budget is set per series-hour: with
about 8,400 series-hours a week across 50 series, ~1e-5 per hour keeps the expected false
alerts well under one a week on data that follows the model. bench/issues.py checks it on
bursty, rhythmic series (false alerts met; the delay target is not: see bench/README.md).

Why windows and not a CUSUM: a CUSUM adds per-bucket log-likelihood ratios as if buckets were
independent given the baseline, but the burst Z is shared by neighbouring buckets, so a busy
hour drifts a CUSUM upwards exactly like a rise does. The windowed negative-binomial test keeps Z
shared inside each window and is the likelihood-ratio test for a rise that began within it; the
windows play the part of a CUSUM's unknown start time.

Hysteresis. Once raised, the alert stays open (no repeat) until `cooldown_buckets` (6: half an
hour) consecutive buckets look ordinary again (the tail of the longest window of at most
`clear_window` buckets above `clear_p`, 0.05); only then can the series raise again. A level
still high after `adopt_after_buckets` (72: six hours) is the new normal and joins the baseline,
so the alert can close. A series raises nothing until `warmup_buckets` (12: an hour) of baseline
exist and every hour of the UTC day has some baseline: before it has seen a day, a series cannot
tell its morning ramp from a spike (on the first day the ramp raised most of the false alerts),
and a brand-new issue is `new`, not a spike.

Limits, by arithmetic rather than by choice: at 5x a baseline of a few events an hour, ten
minutes hold one or two events, below `min_count`; such issues are caught later or not at all
(bench/issues.py reports the delay per baseline band). And a burst shared by an hour (Z) cannot
be told from the start of a rise of the same size in the first minutes: without knowing Z, even
a detector told the true daily rhythm finds about a third of the benchmark's 5x rises within ten
minutes at one false alert a week (bench/README.md).

Pure: the state is a small dataclass the caller stores between buckets. The caller says which
five-minute bucket of the UTC day each count belongs to (`day_bucket`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

BUCKETS_PER_DAY = 288  # five-minute buckets
HOURS = 24


@dataclass(frozen=True)
class SpikeParams:
    bucket_minutes: int = 5
    windows: tuple[int, ...] = (1, 2, 3)
    level_half_life_buckets: float = 288.0
    season_half_life_days: float = 3.0
    season_prior: float = 5.0
    season_smoothing_hours: float = 4.0
    dispersion_half_life_buckets: float = 576.0
    dispersion_prior: float = 0.25
    dispersion_prior_buckets: float = 24.0
    estimate_weight: float = 1.0
    min_count: int = 6
    min_ratio: float = 2.5
    alpha: float = 1e-5
    clear_p: float = 0.05
    clear_window: int = 3
    cooldown_buckets: int = 6
    warmup_buckets: int = 12
    adopt_after_buckets: int = 72


@dataclass(frozen=True)
class SpikeState:
    level_events: float = 0.0  # decayed sum of de-seasoned baseline counts
    level_buckets: float = 0.0  # decayed number of baseline buckets
    season_counts: tuple[float, ...] = (0.0,) * HOURS  # per hour of day: decayed sum of counts
    season_expected: tuple[float, ...] = (0.0,) * HOURS  # ... and of the level at the time
    disp_num: float = 0.0  # decayed sum of (y - mu)^2 - y
    disp_den: float = 0.0  # decayed sum of mu^2
    disp_buckets: float = 0.0
    # Newest last: (count, seen while alerting, expected count, day bucket).
    recent: tuple[tuple[int, bool, float, int], ...] = ()
    alerting: bool = False
    calm: int = 0  # consecutive ordinary buckets while alerting
    open_for: int = 0  # buckets since the open alert was raised


@dataclass(frozen=True)
class Spike:
    """One alert: the window that crossed, what was seen and what was expected there."""

    window_buckets: int
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


@lru_cache(maxsize=8)
def _kernel(half_width: float) -> tuple[tuple[int, float], ...]:
    """Triangular weights over the neighbouring hours, `half_width` hours each side."""
    offsets = range(-math.ceil(half_width) + 1, math.ceil(half_width))
    weights = [(d, 1.0 - abs(d) / half_width) for d in offsets]
    total = sum(w for _, w in weights)
    return tuple((d, w / total) for d, w in weights)


def _pooled_hour(state: SpikeState, hour: int, params: SpikeParams) -> tuple[float, float, float]:
    """(counts, expected, events behind the estimate) of an hour pooled with its neighbours: the
    day's rhythm is smooth, and one hour's few days of history alone are as noisy as the hour
    under test."""
    c = e = c2 = 0.0
    for offset, weight in _kernel(params.season_smoothing_hours):
        count = state.season_counts[(hour + offset) % HOURS]
        c += weight * count
        e += weight * state.season_expected[(hour + offset) % HOURS]
        c2 += weight * weight * count
    c += params.season_prior
    # A weighted mean of counts has the relative variance of (sum w c)^2 / sum w^2 c events.
    events = c * c / (c2 + params.season_prior)
    return c, e + params.season_prior, events


def _season_of_hour(state: SpikeState, hour: int, params: SpikeParams) -> float:
    c, e, _ = _pooled_hour(state, hour, params)
    return c / e


def season_at(state: SpikeState, day_bucket: int, params: SpikeParams = SpikeParams()) -> float:
    """The season factor at a bucket's middle, linear between the centres of the hours."""
    per_hour = BUCKETS_PER_DAY // HOURS
    position = (day_bucket % BUCKETS_PER_DAY + 0.5) / per_hour - 0.5  # in hours, 0 = 00:30
    lower = math.floor(position)
    frac = position - lower
    a = _season_of_hour(state, lower % HOURS, params)
    b = _season_of_hour(state, (lower + 1) % HOURS, params)
    return a * (1 - frac) + b * frac


def expected_count(state: SpikeState, day_bucket: int, params: SpikeParams = SpikeParams()) -> float:
    """The baseline's expected count for a bucket (0 before any baseline)."""
    if state.level_buckets <= 0:
        return 0.0
    return state.level_events / state.level_buckets * season_at(state, day_bucket, params)


def _estimate_variance(state: SpikeState, day_bucket: int, params: SpikeParams) -> float:
    """The baseline's own relative variance: about 1 / the events behind its level and its hour."""
    hour = (day_bucket % BUCKETS_PER_DAY) * HOURS // BUCKETS_PER_DAY
    _, _, season_events = _pooled_hour(state, hour, params)
    return 1.0 / (state.level_events + 1.0) + 1.0 / season_events


def _inverse_shape(state: SpikeState, mu: float, day_bucket: int, params: SpikeParams) -> float:
    """1/k: the squared coefficient of variation of the rate around the baseline."""
    prior_w = params.dispersion_prior_buckets * mu * mu
    burst = (
        (state.disp_num + prior_w * params.dispersion_prior) / (state.disp_den + prior_w)
        if (state.disp_den + prior_w) > 0
        else params.dispersion_prior
    )
    burst = max(burst, 0.02)  # never quite Poisson: the model is a model
    return burst + params.estimate_weight * _estimate_variance(state, day_bucket, params)


def day_seen(state: SpikeState) -> bool:
    """Every hour of the day has some baseline: the day's rhythm has been seen once."""
    return all(e > 0 for e in state.season_expected)


def _window_tests(
    state: SpikeState,
    recent: list[tuple[int, bool, float, int]],
    mu_now: float,
    day_bucket: int,
    params: SpikeParams,
) -> list[Spike]:
    """Each window's test of the newest buckets against the baseline (none before any baseline)."""
    tests: list[Spike] = []
    if state.level_buckets <= 0:
        return tests
    inv_k = _inverse_shape(state, mu_now, day_bucket, params)
    shape = 1.0 / inv_k
    for w in params.windows:
        if len(recent) < w:
            continue
        window = recent[-w:]
        observed = sum(c for c, _, _, _ in window)
        # Each bucket's expectation under the current baseline (the older ones were made
        # with an older baseline: re-read them so the window is tested on one belief).
        expected = sum(expected_count(state, b, params) for _, _, _, b in window)
        if expected <= 0:
            continue
        p = negative_binomial_tail(observed, shape, shape / expected, 1.0)
        tests.append(Spike(window_buckets=w, observed=observed, expected=expected, p_value=p))
    return tests


@dataclass(frozen=True)
class _AlertStatus:
    spike: Spike | None
    alerting: bool
    calm: int
    open_for: int


def _raise_or_clear(state: SpikeState, tests: list[Spike], params: SpikeParams) -> _AlertStatus:
    """Raise an alert on the first window that crosses, or count calm buckets towards clearing
    the open one."""
    spike: Spike | None = None
    alerting, calm = state.alerting, state.calm
    open_for = state.open_for + 1 if alerting else 0
    if not alerting and state.level_buckets >= params.warmup_buckets and day_seen(state):
        threshold = params.alpha / len(params.windows)
        for t in tests:
            if (
                t.observed >= params.min_count
                and t.observed >= params.min_ratio * t.expected
                and t.p_value < threshold
            ):
                spike = t
                alerting, calm, open_for = True, 0, 0
                break
    elif alerting:
        # Calm is read on a short window: a long one would keep the alert open an hour after the end.
        clearing = [t for t in tests if t.window_buckets <= params.clear_window]
        ordinary = not clearing or clearing[-1].p_value > params.clear_p
        calm = calm + 1 if ordinary else 0
        if calm >= params.cooldown_buckets:
            alerting, calm, open_for = False, 0, 0
    return _AlertStatus(spike=spike, alerting=alerting, calm=calm, open_for=open_for)


def _absorb_aged_buckets(
    state: SpikeState, recent: list[tuple[int, bool, float, int]], params: SpikeParams
) -> SpikeState:
    """The buckets past the longest window leave `recent` (popped in place) and join the
    baseline's level, season and dispersion, unless they were seen while alerting."""
    longest = max(params.windows)
    level_decay = 0.5 ** (1.0 / params.level_half_life_buckets)
    season_decay = 0.5 ** (1.0 / (params.season_half_life_days * BUCKETS_PER_DAY / HOURS))
    disp_decay = 0.5 ** (1.0 / params.dispersion_half_life_buckets)
    le, lb = state.level_events, state.level_buckets
    sc, se = list(state.season_counts), list(state.season_expected)
    dn, dd, dbk = state.disp_num, state.disp_den, state.disp_buckets
    while len(recent) > longest:
        old, during_alert, mu, b = recent.pop(0)
        if during_alert:  # an alert's buckets neither count nor age the baseline
            continue
        level = le / lb if lb else float(old)
        hour = (b % BUCKETS_PER_DAY) * HOURS // BUCKETS_PER_DAY
        season = (sc[hour] + params.season_prior) / (se[hour] + params.season_prior)
        # Residuals of the prediction made for this bucket, once that prediction knew the day's
        # rhythm (before, they measure the unknown rhythm, not the burstiness), net of the part the
        # baseline's own uncertainty explains (the predictive adds that part back, once).
        if lb > 0 and mu > 0 and all(e > 0 for e in se):
            excess = (old - mu) ** 2 - old - mu * mu * _estimate_variance(state, b, params)
            dn = dn * disp_decay + excess
            dd = dd * disp_decay + mu * mu
            dbk = dbk * disp_decay + 1.0
        sc[hour] = sc[hour] * season_decay + old
        se[hour] = se[hour] * season_decay + level
        le = le * level_decay + old / season
        lb = lb * level_decay + 1.0
    return replace(
        state,
        level_events=le,
        level_buckets=lb,
        season_counts=tuple(sc),
        season_expected=tuple(se),
        disp_num=dn,
        disp_den=dd,
        disp_buckets=dbk,
    )


def step(
    state: SpikeState, count: int, params: SpikeParams = SpikeParams(), *, day_bucket: int = 0
) -> tuple[SpikeState, Spike | None]:
    """Feed the count of the bucket that just closed (its bucket of the UTC day); get the new
    state and maybe a new alert."""
    # Past `adopt_after_buckets` a level that stays high is the new normal: it joins the baseline.
    held_out = state.alerting and state.open_for < params.adopt_after_buckets
    mu_now = expected_count(state, day_bucket, params)
    recent = [*state.recent, (count, held_out, mu_now, day_bucket)]
    tests = _window_tests(state, recent, mu_now, day_bucket, params)
    status = _raise_or_clear(state, tests, params)
    # The buckets that raised belong to the alert: they never join the baseline.
    if status.spike is not None:
        recent = [(c, True, m, b) for c, _, m, b in recent]
    baseline = _absorb_aged_buckets(state, recent, params)
    new_state = replace(
        baseline,
        recent=tuple(recent),
        alerting=status.alerting,
        calm=status.calm,
        open_for=status.open_for,
    )
    return new_state, status.spike


def run(
    counts: list[int], params: SpikeParams = SpikeParams(), start_day_bucket: int = 0
) -> list[tuple[int, Spike]]:
    """The alerts a whole series raises, as (bucket index, spike)."""
    state = SpikeState()
    alerts: list[tuple[int, Spike]] = []
    for i, count in enumerate(counts):
        state, spike = step(state, count, params, day_bucket=(start_day_bucket + i) % BUCKETS_PER_DAY)
        if spike is not None:
            alerts.append((i, spike))
    return alerts
