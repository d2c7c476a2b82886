"""One calibrated confidence per (session, customer): a conditional logit over the candidates.

Each candidate customer c gets a utility u_c = w . f(c) from its evidence; "someone else / nobody"
has utility 0, so  P(c) = exp(u_c) / (1 + sum_j exp(u_j)).  The probabilities of one session never
sum above 1, so a browser shared by two customers can never link to both at high confidence.
The weights are fitted by maximum likelihood on the labelled synthetic world (bench/mapping.py --fit)
and checked there for calibration on other seeds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from supportlens.mapping.evidence import NEAR_WINDOW_MINUTES, Candidate, device_reason, ip_reason, log_count

FEATURES = (
    "device",  # signed in as c in another session of this browser
    "device_log_sessions",  # log(1 + such sessions)
    "device_log_share",  # log(share of the browser's signed-in sessions that are c's), <= 0
    "device_log_gap_days",  # log(1 + days to the nearest of them)
    "device_shared",  # the browser was signed in as >= 2 customers
    "near",  # same IP within NEAR_WINDOW_MINUTES of a signed-in session of c
    "near_gap",  # that gap as a fraction of the window
    "home",  # c signed in behind this IP at some other time
    "home_log_sessions",  # log(1 + signed-in sessions of c behind this IP)
    "ip_log_customers",  # log(distinct customers behind this IP), when there is IP evidence
    "ip_log_devices",  # log(distinct browsers behind this IP), when there is IP evidence
    "device_and_ip",  # both kinds of evidence agree
)

DEVICE_FEATURES = frozenset({0, 1, 2, 3, 4})
IP_FEATURES = frozenset({5, 6, 7, 8, 9, 10})

# Fitted with `python bench/mapping.py --fit --seed 1000` (a seed never used for the reported figures).
WEIGHTS: tuple[float, ...] = (
    1.6111,  # device
    2.3492,  # device_log_sessions
    -1.1588,  # device_log_share
    0.1885,  # device_log_gap_days
    -3.7855,  # device_shared
    4.7893,  # near
    -2.8175,  # near_gap
    3.3122,  # home
    0.0250,  # home_log_sessions
    0.7933,  # ip_log_customers
    -3.4607,  # ip_log_devices
    -0.5123,  # device_and_ip
)

# Links below this are not stored (they would never be shown and only cost writes).
STORE_FLOOR = 0.05


def features(c: Candidate) -> list[float]:
    dev = 1.0 if c.has_device else 0.0
    share = c.dev_n / c.dev_total if c.dev_total else 0.0
    near = 1.0 if c.has_near else 0.0
    home = 1.0 if c.home_n > 0 else 0.0
    ip = 1.0 if c.has_ip else 0.0
    return [
        dev,
        dev * math.log1p(c.dev_n),
        dev * (math.log(share) if share > 0 else 0.0),
        dev * math.log1p((c.dev_gap_hours or 0.0) / 24.0),
        dev * (1.0 if c.dev_customers > 1 else 0.0),
        near,
        near * min(1.0, (c.near_gap_minutes or 0.0) / NEAR_WINDOW_MINUTES),
        home,
        home * math.log1p(c.home_n),
        ip * log_count(c.ip_customers),
        ip * log_count(c.ip_devices),
        dev * ip,
    ]


def _utility(f: Sequence[float], w: Sequence[float], only: frozenset[int] | None = None) -> float:
    return sum(w[i] * f[i] for i in range(len(f)) if only is None or i in only)


def _softmax_with_outside(utilities: dict[str, float]) -> dict[str, float]:
    if not utilities:
        return {}
    top = max(0.0, *utilities.values())
    exps = {k: math.exp(u - top) for k, u in utilities.items()}
    denom = math.exp(-top) + sum(exps.values())
    return {k: v / denom for k, v in exps.items()}


@dataclass(frozen=True)
class Scored:
    email: str
    confidence: float
    method: str
    evidence: list[dict[str, object]]


def score(candidates: dict[str, Candidate], weights: Sequence[float] = WEIGHTS) -> dict[str, Scored]:
    """Confidence, strongest method and worded evidence for every candidate (all, even tiny ones)."""
    feats = {email: features(c) for email, c in sorted(candidates.items())}
    combined = _softmax_with_outside({e: _utility(f, weights) for e, f in feats.items()})
    device_only = _softmax_with_outside(
        {e: _utility(f, weights, DEVICE_FEATURES) for e, f in feats.items() if candidates[e].has_device}
    )
    ip_only = _softmax_with_outside(
        {e: _utility(f, weights, IP_FEATURES) for e, f in feats.items() if candidates[e].has_ip}
    )
    out: dict[str, Scored] = {}
    for email, c in sorted(candidates.items()):
        items: list[dict[str, object]] = []
        if c.has_device:
            items.append(
                {"method": "device_link", "score": round(device_only[email], 4), "reason": device_reason(c)}
            )
        if c.has_ip:
            method = "time_proximity" if c.has_near else "ip_match"
            items.append({"method": method, "score": round(ip_only[email], 4), "reason": ip_reason(c)})
        items.sort(key=lambda item: (-float(item["score"]), str(item["method"])))  # type: ignore[arg-type]
        out[email] = Scored(
            email=email,
            confidence=round(combined[email], 4),
            method=str(items[0]["method"]) if items else "device_link",
            evidence=items,
        )
    return out


# ---- fitting (used by bench/mapping.py --fit) ---------------------------------------------------


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Gaussian elimination with partial pivoting (the system is tiny)."""
    n = len(b)
    m = [[*row[:], b[i]] for i, row in enumerate(a)]
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(m[r][col]))
        m[col], m[pivot] = m[pivot], m[col]
        if abs(m[col][col]) < 1e-12:
            continue
        for r in range(n):
            if r != col and m[r][col] != 0.0:
                factor = m[r][col] / m[col][col]
                for k in range(col, n + 1):
                    m[r][k] -= factor * m[col][k]
    return [m[i][n] / m[i][i] if abs(m[i][i]) > 1e-12 else 0.0 for i in range(n)]


def fit(
    examples: Sequence[tuple[list[list[float]], int | None]],
    *,
    start: Sequence[float] | None = None,
    l2: float = 0.1,
    iterations: int = 25,
) -> list[float]:
    """Maximum-likelihood weights (Newton's method, L2 penalty) for the conditional logit.

    Each example is (feature vectors of the session's candidates, index of the true one or None when
    the session belongs to none of them).
    """
    d = len(FEATURES)
    w = list(start) if start is not None else [0.0] * d
    for _ in range(iterations):
        grad = [-l2 * wi for wi in w]
        hess = [[(l2 if i == j else 0.0) for j in range(d)] for i in range(d)]
        for feats, truth in examples:
            us = [_utility(f, w) for f in feats]
            top = max(0.0, *us)
            exps = [math.exp(u - top) for u in us]
            denom = math.exp(-top) + sum(exps)
            ps = [e / denom for e in exps]
            mean = [sum(ps[k] * feats[k][i] for k in range(len(feats))) for i in range(d)]
            if truth is not None:
                for i in range(d):
                    grad[i] += feats[truth][i]
            for i in range(d):
                grad[i] -= mean[i]
            for k, f in enumerate(feats):
                pk = ps[k]
                if pk == 0.0:
                    continue
                for i in range(d):
                    if f[i] == 0.0:
                        continue
                    fi = pk * f[i]
                    row = hess[i]
                    for j in range(d):
                        row[j] += fi * f[j]
            for i in range(d):
                if mean[i] == 0.0:
                    continue
                row = hess[i]
                for j in range(d):
                    row[j] -= mean[i] * mean[j]
        step = _solve(hess, grad)
        w = [wi + si for wi, si in zip(w, step, strict=True)]
        if max(abs(s) for s in step) < 1e-6:
            break
    return w
