"""One calibrated confidence per (session, customer): a conditional logit over the candidates.

Each candidate customer c gets a utility u_c = w . f(c) from its evidence; "someone else / nobody"
has utility 0, so  P(c) = exp(u_c) / (1 + sum_j exp(u_j)).  The probabilities of one session never
sum above 1, so a browser shared by two customers can never link to both at high confidence.
The weights are fitted by maximum likelihood on the labelled synthetic world (bench/mapping.py --fit)
and checked there for calibration on other seeds.

The features (FEATURES, computed by `features` from evidence.Candidate) come in four groups:
- device: c signed in on this browser (how often, what share of its sign-ins, how long ago), and
  what the browser itself says about being one person's: signed in as several customers
  (device_shared, device_log_signers), or many more sessions than sign-ins (device_log_unsigned:
  past UNSIGNED_KNEE sessions per sign-in it is a shop's or a library's computer, even with a single
  signer); several signers who also sign in on other browsers at this address make it a family's
  computer at their home (shared_at_signers_home), where they are the likely users;
- this address, for a candidate without device evidence: minutes from c's sign-in here, c's other
  sign-ins here, and how many customers and browsers share it;
- the browser's other visits: networks where c signed in, visits minutes from c's sign-in;
- interactions of device and network evidence.
A browser two or more customers signed in on is capped at SHARED_BROWSER_MAX: at most a possible
session. The session count the scorer reads is rounded down to a power of two, so the engine
re-scores a browser only when that rounded count moves the feature (`unsigned_moves`).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

from supportlens.mapping.evidence import (
    NEAR_WINDOW_MINUTES,
    UNSIGNED_KNEE,
    Candidate,
    browser_reason,
    device_reason,
    ip_reason,
    log_count,
    sessions_bucket,
)

FEATURES = (
    "device",  # signed in as c in another session of this browser
    "device_log_sessions",  # log(1 + such sessions)
    "device_log_share",  # log(share of the browser's signed-in sessions that are c's), <= 0
    "device_log_gap_days",  # log(1 + days to the nearest of them)
    "device_shared",  # the browser was signed in as >= 2 customers
    # This session's network, for a candidate without device evidence (a crowd penalty fitted for
    # IP-only candidates would otherwise drag down a browser's own sign-in seen at an office):
    "near",  # same IP within NEAR_WINDOW_MINUTES of a signed-in session of c
    "near_gap",  # that gap as a fraction of the window
    "home",  # c signed in behind this IP at some other time
    "home_log_sessions",  # log(1 + signed-in sessions of c behind this IP)
    "ip_log_customers",  # log(distinct customers behind this IP)
    "ip_log_devices",  # log(distinct browsers behind this IP)
    # ... and for a candidate with device evidence:
    "device_and_near",
    "device_and_home",
    # The browser's other visits:
    "browser_log_networks",  # log(1 + other networks of this browser where c signed in)
    "browser_log_networks_home",  # the same, when c also signed in behind this session's IP
    "browser_log_near",  # log(1 + other visits of this browser minutes from c's sign-in)
    "browser_only",  # c is a candidate only through the browser's other visits
    "browser_network_share",  # share of the browser's other (informative) networks where c signed in
    # On a browser signed in as c, other visits minutes from c's sign-in on another browser mostly mark
    # a family computer: someone else browses on it while c is on their own device. It moves only the
    # combined confidence; each evidence item still says what its own evidence alone says.
    "device_and_browser_near",
    # Browsers several customers sign in on (family, shop and library computers) are no one person's:
    # the more signed in there, the less any of them is behind one of its anonymous sessions.
    "device_log_signers",  # log(customers who signed in on this browser), for c signed in on it
    "network_log_signers",  # the same, for c not signed in on it
    # A shop's or a library's computer has many more sessions than sign-ins, even when only one
    # customer signed in on it; a person's own browser, once signed in, is mostly signed in again
    # (a remembered login), so it rarely passes 8 sessions per sign-in:
    "device_log_unsigned",  # log(sessions of the browser per signed-in session on it / 8), >= 0
    # A computer several people sign in on, at an address where they also sign in on other browsers, is
    # a family's at their home rather than a shop's: being at home should not count against them.
    "shared_at_signers_home",
)

DEVICE_FEATURES = frozenset({0, 1, 2, 3, 4, 11, 12, 19, 21, 22})
IP_FEATURES = frozenset({5, 6, 7, 8, 9, 10, 13, 14, 15, 16, 17, 20})

# Fitted with `python bench/mapping.py --fit --seed 1000` (a seed never used for the reported figures);
# the last two with `--free device_log_unsigned,shared_at_signers_home`, the others held.
WEIGHTS: tuple[float, ...] = (
    2.8744,  # device
    1.4811,  # device_log_sessions
    0.1924,  # device_log_share
    -0.0828,  # device_log_gap_days
    -3.4532,  # device_shared
    5.4081,  # near
    -2.8768,  # near_gap
    2.4199,  # home
    -0.6214,  # home_log_sessions
    0.3317,  # ip_log_customers
    -2.9486,  # ip_log_devices
    5.0391,  # device_and_near
    -0.8021,  # device_and_home
    0.9134,  # browser_log_networks
    -3.2962,  # browser_log_networks_home
    4.7113,  # browser_log_near
    -4.8812,  # browser_only
    2.1882,  # browser_network_share
    -5.7822,  # device_and_browser_near
    -1.5240,  # device_log_signers
    -0.6176,  # network_log_signers
    -5.1149,  # device_log_unsigned
    2.9689,  # shared_at_signers_home
)

# Links below this are not stored (they would never be shown and only cost writes).
STORE_FLOOR = 0.05
# A browser two or more customers signed in on (a family computer, a shop's or a library's) is no one
# person's: its sign-ins are no deterministic evidence for any of them, and nothing else we hold tells
# its users apart. An anonymous session on it is at most a possible session, below the default
# listing threshold (0.5) however its candidates score.
SHARED_BROWSER_MAX = 0.45


def on_shared_browser(c: Candidate) -> bool:
    return c.browser_signers >= 2


def features(c: Candidate) -> list[float]:
    dev = 1.0 if c.has_device else 0.0
    alone = 1.0 - dev
    share = c.dev_n / c.dev_total if c.dev_total else 0.0
    near = 1.0 if c.has_near else 0.0
    home = 1.0 if c.home_n > 0 else 0.0
    ip = 1.0 if c.has_ip else 0.0
    networks = math.log1p(c.browser_networks)
    return [
        dev,
        dev * math.log1p(c.dev_n),
        dev * (math.log(share) if share > 0 else 0.0),
        dev * math.log1p((c.dev_gap_hours or 0.0) / 24.0),
        dev * (1.0 if c.dev_customers > 1 else 0.0),
        alone * near,
        alone * near * min(1.0, (c.near_gap_minutes or 0.0) / NEAR_WINDOW_MINUTES),
        alone * home,
        alone * home * math.log1p(c.home_n),
        alone * ip * log_count(c.ip_customers),
        alone * ip * log_count(c.ip_devices),
        dev * near,
        dev * home,
        networks,
        home * networks,
        math.log1p(c.browser_near),
        1.0 if c.has_browser and not (c.has_device or c.has_ip) else 0.0,
        c.browser_networks / c.browser_networks_total if c.browser_networks_total else 0.0,
        dev * math.log1p(c.browser_near),
        dev * log_count(c.browser_signers),
        alone * log_count(c.browser_signers),
        dev * math.log(max(1.0, c.browser_sessions / (UNSIGNED_KNEE * c.dev_total))) if dev else 0.0,
        dev * (1.0 if c.browser_signers >= 2 and c.signers_home else 0.0),
    ]


def unsigned_moves(sessions: int, sign_ins: int) -> bool:
    """Whether a browser with `sign_ins` sign-ins that reached `sessions` sessions just moved the
    `device_log_unsigned` of its sessions: the feature reads the count rounded down to a power of two
    and is 0 up to UNSIGNED_KNEE sessions per sign-in, so only at 16 s, 32 s, ... for s sign-ins (5
    counts for one sign-in below the busy cap of 500). The engine re-scores the browser then."""
    return sign_ins > 0 and sessions_bucket(sessions) == sessions and sessions > UNSIGNED_KNEE * sign_ins


def _without_device(c: Candidate) -> Candidate:
    return replace(c, dev_n=0, dev_total=0, dev_customers=0, dev_gap_hours=None, dev_nearest=None)


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
    # What the networks alone say (this session's and the browser's other visits').
    ip_only = _softmax_with_outside(
        {
            e: _utility(features(_without_device(candidates[e])), weights, IP_FEATURES)
            for e in feats
            if candidates[e].has_ip or candidates[e].has_browser
        }
    )
    out: dict[str, Scored] = {}
    for email, c in sorted(candidates.items()):
        items: list[dict[str, object]] = []
        if c.has_device:
            items.append(
                {"method": "device_link", "score": round(device_only[email], 4), "reason": device_reason(c)}
            )
        if c.has_ip or c.has_browser:
            method = "time_proximity" if c.has_near else "ip_match"
            reason = "; ".join(r for r in (ip_reason(c) if c.has_ip else "", browser_reason(c)) if r)
            items.append({"method": method, "score": round(ip_only[email], 4), "reason": reason})
        items.sort(key=lambda item: (-float(item["score"]), str(item["method"])))  # type: ignore[arg-type]
        confidence = combined[email]
        if on_shared_browser(c):
            confidence = min(confidence, SHARED_BROWSER_MAX)
        out[email] = Scored(
            email=email,
            confidence=round(confidence, 4),
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
    iterations: int = 50,
    free: Collection[int] | None = None,
) -> list[float]:
    """Maximum-likelihood weights (Newton's method, L2 penalty) for the conditional logit.

    Each example is (feature vectors of the session's candidates, index of the true one or None when
    the session belongs to none of them). With `free`, only those weights move (from `start`): new
    features are fitted without re-deciding the others.
    """
    d = len(start) if start is not None else next((len(f[0]) for f, _ in examples if f), len(FEATURES))
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
        if free is not None:
            for i in range(d):
                if i not in free:  # held: a step of 0 in this coordinate
                    grad[i] = 0.0
                    for j in range(d):
                        hess[i][j] = hess[j][i] = 0.0
                    hess[i][i] = 1.0
        step = _solve(hess, grad)
        # Backtracking: a full Newton step from far away can overshoot; halve it until the penalised
        # likelihood does not fall.
        current = _objective(examples, w, l2)
        scale = 1.0
        for _ in range(30):
            trial = [wi + scale * si for wi, si in zip(w, step, strict=True)]
            if _objective(examples, trial, l2) >= current - 1e-9:
                break
            scale /= 2
        w = trial
        if max(abs(scale * s) for s in step) < 1e-6:
            break
    return w


def _objective(
    examples: Sequence[tuple[list[list[float]], int | None]], w: Sequence[float], l2: float
) -> float:
    """Log-likelihood of the examples under weights w, minus the L2 penalty."""
    total = -0.5 * l2 * sum(wi * wi for wi in w)
    for feats, truth in examples:
        us = [_utility(f, w) for f in feats]
        top = max(0.0, *us)
        log_denom = top + math.log(math.exp(-top) + sum(math.exp(u - top) for u in us))
        total += (us[truth] if truth is not None else 0.0) - log_denom
    return total
