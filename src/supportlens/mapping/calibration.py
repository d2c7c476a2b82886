"""How right the automatic links are, judged by the agents' own decisions (pure: no I/O).

Every manual decision on a (session, customer) pair is a label: "link" says the pair is right,
"unlink" says it is wrong. When the engine had scored the pair before the agent decided, the row kept
what it said (`auto_method`, `auto_confidence`), so each label can be set against a prediction.

The model. A calibrated scorer's confidence p is the probability that the pair is right. Within a band
of confidence, the labelled pairs are Bernoulli trials; the share agents confirmed estimates the band's
real precision. The band *disagrees* with the model when the mean predicted confidence of its pairs lies
outside the Wilson score interval of that share, at a 95 % family-wise level: the interval of each of
the k bands that hold labels uses z for alpha = 0.05 / k (Bonferroni), so with well-calibrated scores
the report claims a disagreement in about 1 report in 20, however many bands it shows (Wilson
intervals are approximate: 5.7 % of 300 simulated well-calibrated reports in the tests). Bands with
fewer than `MIN_LABELS` labels are shown but never judged: a handful of labels says nothing.

What this does not say. Agents label the links they look at and doubt, not a random sample, so the
figures are the precision *of what agents checked*. They describe the real world, where the synthetic
world of `bench/mapping.py` fitted the weights; no weight is re-fitted from them automatically.

Links the engine missed are counted apart: an agent's "link" on a pair the engine scored below the
listing threshold, or never scored at all. Decisions on possible sessions (sessions/possible.py: scored
below the threshold down to the possible floor) are labels like any other, and are also counted apart:
how many agents confirmed and how many they dismissed.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

BAND_EDGES: tuple[float, ...] = (0.0, 0.2, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
MIN_LABELS = 10
FAMILY_ALPHA = 0.05


@dataclass(frozen=True)
class Label:
    """One agent decision on a pair the engine had scored (or not: `confidence` None)."""

    method: str | None  # the engine's method before the decision; None when it had no link
    confidence: float | None
    correct: bool  # the agent linked (True) or unlinked (False)


@dataclass(frozen=True)
class Band:
    low: float
    high: float
    labels: int
    confirmed: int
    mean_confidence: float
    interval: tuple[float, float]  # Wilson interval of the confirmed share, family-wise level
    judged: bool  # enough labels to judge
    disagrees: bool

    @property
    def precision(self) -> float:
        return self.confirmed / self.labels if self.labels else 0.0


@dataclass(frozen=True)
class MethodPrecision:
    method: str
    labels: int
    confirmed: int
    interval: tuple[float, float]  # 95 % Wilson interval

    @property
    def precision(self) -> float:
        return self.confirmed / self.labels if self.labels else 0.0


@dataclass(frozen=True)
class CalibrationReport:
    threshold: float
    labels: int  # decisions set against a prediction
    listed_by_method: tuple[MethodPrecision, ...]  # links at or above the threshold, per method
    bands: tuple[Band, ...]
    missed: int  # agent links on pairs the engine had below the threshold or not at all
    unscored_unlinks: int  # agent unlinks on pairs the engine never scored (nothing to judge)
    # Decisions on possible sessions (scored in [possible_floor, threshold)): confirmed or dismissed.
    possible_floor: float | None = None
    possible_labels: int = 0
    possible_confirmed: int = 0

    @property
    def disagreeing(self) -> tuple[Band, ...]:
        return tuple(b for b in self.bands if b.disagrees)


def wilson_interval(successes: int, trials: int, z: float) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (good near 0 and 1, unlike the normal one)."""
    if trials <= 0:
        return (0.0, 1.0)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def z_for(alpha: float) -> float:
    """The two-sided normal quantile for a significance level alpha."""
    return NormalDist().inv_cdf(1 - alpha / 2)


def band_of(confidence: float, edges: Sequence[float] = BAND_EDGES) -> int:
    """Index of the band [edges[i], edges[i+1]) holding a confidence; 1.0 falls in the last band."""
    for i in range(len(edges) - 1):
        if confidence < edges[i + 1]:
            return i
    return len(edges) - 2


def report(
    labels: Iterable[Label],
    *,
    threshold: float,
    edges: Sequence[float] = BAND_EDGES,
    min_labels: int = MIN_LABELS,
    family_alpha: float = FAMILY_ALPHA,
    possible_floor: float | None = None,
) -> CalibrationReport:
    """`possible_floor`: also count the decisions on possible sessions (confidence in [floor, threshold))."""
    scored: list[Label] = []
    missed = unscored_unlinks = 0
    for label in labels:
        if label.confidence is None:
            if label.correct:
                missed += 1
            else:
                unscored_unlinks += 1
            continue
        if label.correct and label.confidence < threshold:
            missed += 1
        scored.append(label)

    by_band: dict[int, list[Label]] = defaultdict(list)
    for label in scored:
        assert label.confidence is not None
        by_band[band_of(label.confidence, edges)].append(label)
    judged_bands = sum(1 for members in by_band.values() if len(members) >= min_labels)
    z_family = z_for(family_alpha / max(1, judged_bands))
    bands = []
    for index in sorted(by_band):
        members = by_band[index]
        confirmed = sum(1 for m in members if m.correct)
        mean_confidence = sum(m.confidence or 0.0 for m in members) / len(members)
        interval = wilson_interval(confirmed, len(members), z_family)
        judged = len(members) >= min_labels
        bands.append(
            Band(
                low=edges[index],
                high=edges[index + 1],
                labels=len(members),
                confirmed=confirmed,
                mean_confidence=mean_confidence,
                interval=interval,
                judged=judged,
                disagrees=judged and not (interval[0] <= mean_confidence <= interval[1]),
            )
        )

    listed: dict[str, list[Label]] = defaultdict(list)
    for label in scored:
        if label.method and label.confidence is not None and label.confidence >= threshold:
            listed[label.method].append(label)
    z95 = z_for(0.05)
    methods = tuple(
        MethodPrecision(
            method=method,
            labels=len(members),
            confirmed=sum(1 for m in members if m.correct),
            interval=wilson_interval(sum(1 for m in members if m.correct), len(members), z95),
        )
        for method, members in sorted(listed.items())
    )
    possible = [
        label
        for label in scored
        if possible_floor is not None and possible_floor <= (label.confidence or 0.0) < threshold
    ]
    return CalibrationReport(
        threshold=threshold,
        labels=len(scored),
        listed_by_method=methods,
        bands=tuple(bands),
        missed=missed,
        unscored_unlinks=unscored_unlinks,
        possible_floor=possible_floor,
        possible_labels=len(possible),
        possible_confirmed=sum(1 for label in possible if label.correct),
    )


def as_lines(r: CalibrationReport) -> list[str]:
    """The report as plain text (the `supportlens mapping report` command)."""

    def pct(value: float) -> str:
        return f"{value * 100:.1f} %"

    lines = [
        f"Automatic links judged by agents' decisions: {r.labels} labels "
        f"(listing threshold {r.threshold:.2f}).",
        "",
        "Listed links (confidence >= threshold), by method:",
    ]
    if not r.listed_by_method:
        lines.append("  no labels yet")
    for m in r.listed_by_method:
        lines.append(
            f"  {m.method:<16} {m.confirmed}/{m.labels} confirmed  precision {pct(m.precision)}"
            f"  (95 % interval {pct(m.interval[0])} to {pct(m.interval[1])})"
        )
    lines += ["", "Calibration, by confidence band:"]
    if not r.bands:
        lines.append("  no labels yet")
    for b in r.bands:
        verdict = (
            "DISAGREES with the model"
            if b.disagrees
            else ("agrees" if b.judged else f"too few labels to judge (< {MIN_LABELS})")
        )
        lines.append(
            f"  {b.low:.2f}-{b.high:.2f}  {b.confirmed}/{b.labels} confirmed  precision {pct(b.precision)}"
            f"  model says {pct(b.mean_confidence)}  interval {pct(b.interval[0])} to {pct(b.interval[1])}"
            f"  {verdict}"
        )
    lines += [
        "",
        f"Links the engine missed (agents linked a pair it had below the threshold or never scored): "
        f"{r.missed}",
        f"Unlinks of pairs the engine never scored: {r.unscored_unlinks}",
    ]
    if r.possible_floor is not None:
        lines.append(
            f"Possible sessions decided (confidence {r.possible_floor:.2f} to {r.threshold:.2f}): "
            f"{r.possible_confirmed} confirmed, {r.possible_labels - r.possible_confirmed} dismissed"
        )
    if r.disagreeing:
        lines += [
            "",
            f"{len(r.disagreeing)} band(s) disagree with the model's calibration beyond noise "
            f"(95 % family-wise). The weights are not re-fitted automatically.",
        ]
    lines += [
        "",
        "Agents label the links they check, not a random sample: these figures are the precision of what",
        "agents checked.",
    ]
    return lines


def as_json(r: CalibrationReport) -> dict[str, object]:
    return {
        "threshold": r.threshold,
        "labels": r.labels,
        "listedByMethod": [
            {
                "method": m.method,
                "labels": m.labels,
                "confirmed": m.confirmed,
                "precision": m.precision,
                "interval": list(m.interval),
            }
            for m in r.listed_by_method
        ],
        "bands": [
            {
                "low": b.low,
                "high": b.high,
                "labels": b.labels,
                "confirmed": b.confirmed,
                "precision": b.precision,
                "meanConfidence": b.mean_confidence,
                "interval": list(b.interval),
                "judged": b.judged,
                "disagrees": b.disagrees,
            }
            for b in r.bands
        ],
        "missed": r.missed,
        "unscoredUnlinks": r.unscored_unlinks,
        "possible": {
            "floor": r.possible_floor,
            "labels": r.possible_labels,
            "confirmed": r.possible_confirmed,
        },
    }
