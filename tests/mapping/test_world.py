"""Building blocks of bench/mapping.py: the synthetic world, the scorer's fit and the metrics."""

from __future__ import annotations

import math
from collections import Counter

from supportlens.mapping import scoring
from supportlens.mapping.evidence import Candidate, gather
from supportlens_sandbox.mapping_world import build_world, offline_facts


def test_world_is_seeded_and_has_the_ingredients():
    a, b = build_world(3, 300), build_world(3, 300)
    assert [(s.session, s.ip, s.truth) for s in a.sessions] == [
        (s.session, s.ip, s.truth) for s in b.sessions
    ]
    assert [s.session for s in build_world(4, 300).sessions] != [s.session for s in a.sessions]
    assert len(a.customers) == 300
    assert 0.3 <= a.signed_in_share <= 0.55
    users_per_ip: Counter[str] = Counter()
    for ip in {s.ip for s in a.sessions}:
        users_per_ip[ip] = len({s.device for s in a.sessions if s.ip == ip})
    assert max(users_per_ip.values()) > 10  # offices, carrier NAT, VPN exits
    devices_of: dict[str, set[str]] = {}
    owners: dict[str, set[str]] = {}
    for s in a.sessions:
        if s.truth:
            devices_of.setdefault(s.truth, set()).add(s.device)
            owners.setdefault(s.device, set()).add(s.truth)
    assert max(len(d) for d in devices_of.values()) >= 3
    assert any(len(o) >= 2 for o in owners.values())  # shared family computers
    assert any(s.truth is None for s in a.sessions)  # visitors who are nobody's customer
    assert any(s.login_batch == 1 for s in a.sessions)  # signed in part-way through


def test_fit_recovers_a_known_model():
    """Sessions drawn from a known conditional logit: the fit finds its weights again."""
    import random

    rng = random.Random(1)
    true_w = [2.0, 0.5, 1.0, -0.3, -1.5, 3.0, -2.0, 1.0, 0.2, -0.5, -0.4, 0.3]
    examples = []
    for _ in range(3000):
        feats = [
            [rng.choice([0.0, 1.0]) if i in (0, 4, 5, 7) else rng.uniform(-1, 1) for i in range(12)]
            for _ in range(rng.randint(1, 3))
        ]
        us = [sum(w * f for w, f in zip(true_w, fv, strict=True)) for fv in feats]
        denom = 1 + sum(math.exp(u) for u in us)
        r, acc, truth = rng.random(), 0.0, None
        for k, u in enumerate(us):
            acc += math.exp(u) / denom
            if r < acc:
                truth = k
                break
        examples.append((feats, truth))
    fitted = scoring.fit(examples, l2=0.01)
    assert max(abs(a - b) for a, b in zip(fitted, true_w, strict=True)) < 0.35


def test_scores_of_one_session_never_sum_above_one():
    world = build_world(5, 200)
    checked = 0
    for _, facts in offline_facts(world):
        scored = scoring.score(gather(facts))
        if len(scored) >= 2:
            checked += 1
            assert sum(s.confidence for s in scored.values()) <= 1.0 + 1e-9
            assert sum(s.confidence >= 0.5 for s in scored.values()) <= 1
    assert checked > 0


def test_evidence_words():
    c = Candidate(email="a@x.io", dev_n=1, dev_total=1, dev_customers=1, ip_customers=3, near_gap_minutes=4.2)
    scored = scoring.score({"a@x.io": c})["a@x.io"]
    reasons = {e["method"]: e["reason"] for e in scored.evidence}
    assert reasons["time_proximity"] == "same IP 4 minutes after sign-in; 3 customers share this IP"
    assert str(reasons["device_link"]).startswith("same browser as the signed-in session of")
    assert scored.method == scored.evidence[0]["method"]


def test_ece_and_evaluate():
    from bench import mapping as bench

    err, _ = bench.ece([(0.8, True)] * 8 + [(0.8, False)] * 2)
    assert abs(err) < 1e-9
    err, _ = bench.ece([(0.9, False)] * 10)
    assert abs(err - 0.9) < 1e-9
    world = build_world(6, 200)
    links = bench.offline_links(world)
    rep = bench.evaluate(world, links, 0.5)
    assert rep.per_method["email_match"][1] == 1.0
    assert 0.9 < rep.precision <= 1.0 and 0.7 < rep.recall <= 1.0


def test_shared_computers_come_from_their_own_stream():
    plain, shared = build_world(8, 400, shared=False), build_world(8, 400)
    others = [s for s in shared.sessions if s.shared is None]
    assert [(s.session, s.ip, s.start, s.truth, s.login_batch) for s in others] == [
        (s.session, s.ip, s.start, s.truth, s.login_batch) for s in plain.sessions
    ]
    on: dict[str, list] = {}
    for s in shared.sessions:
        if s.shared:
            on.setdefault(s.device, []).append(s)
    family = [v for v in on.values() if v[0].shared == "family"]
    public = [v for v in on.values() if v[0].shared == "public"]
    assert family and public
    for sessions in family:  # two customers, each signed in at least once and anonymous at least once
        people = {s.truth for s in sessions}
        assert len(people) == 2 and None not in people
        for who in people:
            assert {s.signed_in for s in sessions if s.truth == who} == {True, False}
    for sessions in public:  # many people, customers or not; only customers sign in
        assert len({s.truth for s in sessions}) >= 10
        assert all(s.truth for s in sessions if s.signed_in)
    assert any(s.truth is None for v in public for s in v)


def test_tiers_and_shared_device_figures():
    from bench import mapping as bench

    world = build_world(9, 300)
    tiers = bench.evidence_tiers(world)
    rep = bench.evaluate(world, bench.offline_links(world), 0.5, tiers)
    assert sum(t.truth for t in rep.tiers.values()) == rep.truth
    assert rep.tiers[bench.SIGNED_IN].recall == 1.0
    assert rep.tiers[bench.SHARED].truth > 0 and rep.tiers[bench.SHARED].shown == 0
    assert rep.shared_devices["family"][0] == 0  # never listed by default on a family computer
    assert 0.0 < rep.ceiling < 1.0 and rep.recall <= rep.recall_possible <= rep.ceiling


def test_fit_with_free_weights_moves_only_those():
    import random

    rng = random.Random(2)
    examples = []
    for _ in range(400):
        feats = [[rng.uniform(-1, 1) for _ in range(3)] for _ in range(rng.randint(1, 3))]
        truth = (
            max(range(len(feats)), key=lambda k: feats[k][0] + feats[k][2]) if rng.random() < 0.8 else None
        )
        examples.append((feats, truth))
    start = [0.5, -0.25, 0.0]
    fitted = scoring.fit(examples, start=start, free=[2])
    assert fitted[:2] == start[:2]
    assert fitted[2] > 0.5  # the free weight found its own (positive) value
