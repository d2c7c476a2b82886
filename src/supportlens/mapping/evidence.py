"""Evidence: what the stored facts say about who an anonymous session belongs to, in numbers and words.

Everything here is pure Python on plain values, so the benchmark can fit the scorer on exactly the
features the engine computes from the database.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

# An anonymous session within this gap of a signed-in session on the same IP is "minutes apart".
NEAR_WINDOW_MINUTES = 60.0
# Addresses shared by more customers or browsers than this carry no evidence at all (carrier NAT,
# VPN exits, big offices); counting stops one above the cap so the work per address stays bounded.
MAX_IP_CUSTOMERS = 10
MAX_IP_DEVICES = 25
# A browser's other networks count as evidence only when few browsers use them: a phone hops between
# a carrier's shared addresses, and sharing those with a customer says nothing about whose phone it is.
BROWSER_MAX_IP_DEVICES = 8


@dataclass(frozen=True, order=True)
class Sighting:
    """A session on which the site named a signed-in customer."""

    start: datetime
    end: datetime
    session_id: uuid.UUID
    email: str


@dataclass(frozen=True)
class Visit:
    """Another session of the same browser, with the signed-in sessions behind its network."""

    session_id: uuid.UUID
    start: datetime
    end: datetime
    ip_key: str | None
    # None when the network is unknown or too crowded to mean anything (as for `ip_sightings`).
    sightings: list[Sighting] | None
    ip_devices: int = 0


@dataclass
class SessionFacts:
    """What is known around one anonymous session."""

    session_id: uuid.UUID
    start: datetime
    end: datetime
    device_sightings: list[Sighting] = field(default_factory=list)
    # Signed-in sessions behind the same IP; None when the IP is unknown or too crowded to mean anything.
    ip_sightings: list[Sighting] | None = None
    ip_customers: int = 0
    ip_devices: int = 0
    ip_key: str | None = None
    # Every session of this browser (this one included): where else the browser goes tells whose it is.
    browser_visits: list[Visit] = field(default_factory=list)


@dataclass
class Candidate:
    email: str
    dev_n: int = 0
    dev_total: int = 0
    dev_customers: int = 0
    dev_gap_hours: float | None = None
    dev_nearest: datetime | None = None
    dev_before_first: bool = False
    near_gap_minutes: float | None = None
    near_after: bool = True
    home_n: int = 0
    ip_customers: int = 0
    ip_devices: int = 0
    # The browser's other visits: on how many of its other networks c signed in (out of how many
    # networks that carry evidence), and how many of its visits were minutes from c's sign-in there.
    browser_networks: int = 0
    browser_networks_total: int = 0
    browser_near: int = 0

    @property
    def has_device(self) -> bool:
        return self.dev_n > 0

    @property
    def has_browser(self) -> bool:
        return self.browser_networks > 0 or self.browser_near > 0

    @property
    def has_near(self) -> bool:
        return self.near_gap_minutes is not None

    @property
    def has_ip(self) -> bool:
        return self.has_near or self.home_n > 0


def interval_gap_minutes(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> float:
    """Minutes between two time intervals (0 when they overlap)."""
    if b_start >= a_end:
        return (b_start - a_end).total_seconds() / 60.0
    if a_start >= b_end:
        return (a_start - b_end).total_seconds() / 60.0
    return 0.0


def gather(facts: SessionFacts, *, exclude: Iterable[str] = ()) -> dict[str, Candidate]:
    """Candidates for one anonymous session, keyed by e-mail, from the device and IP facts."""
    excluded = set(exclude)
    out: dict[str, Candidate] = {}
    device = sorted(s for s in facts.device_sightings if s.session_id != facts.session_id)
    dev_customers = len({s.email for s in device})
    for s in device:
        if s.email in excluded:
            continue
        c = out.setdefault(s.email, Candidate(email=s.email))
        c.dev_n += 1
        c.dev_total = len(device)
        c.dev_customers = dev_customers
        gap = abs((s.start - facts.start).total_seconds()) / 3600.0
        if c.dev_gap_hours is None or gap < c.dev_gap_hours:
            c.dev_gap_hours = gap
            c.dev_nearest = s.start
    for c in out.values():
        first = min(s.start for s in device if s.email == c.email)
        c.dev_before_first = facts.start < first
    if facts.ip_sightings is not None:
        for s in sorted(facts.ip_sightings):
            if s.session_id == facts.session_id or s.email in excluded:
                continue
            c = out.setdefault(s.email, Candidate(email=s.email))
            c.home_n += 1
            c.ip_customers = facts.ip_customers
            c.ip_devices = facts.ip_devices
            gap = interval_gap_minutes(facts.start, facts.end, s.start, s.end)
            if gap <= NEAR_WINDOW_MINUTES and (c.near_gap_minutes is None or gap < c.near_gap_minutes):
                c.near_gap_minutes = gap
                c.near_after = facts.start >= s.start
    _gather_browser(facts, out, excluded)
    return out


def _gather_browser(facts: SessionFacts, out: dict[str, Candidate], excluded: set[str]) -> None:
    """Evidence from the browser's other visits: the networks it shares with a customer's sign-ins.

    A laptop seen at a home address and at an office tells its owner apart from the other people
    of that home; sign-ins on this browser itself are device evidence and are left out here.
    """
    own = {v.session_id for v in facts.browser_visits} | {facts.session_id}
    networks: set[str] = set()
    shared: dict[str, set[str]] = {}
    near: dict[str, int] = {}
    for v in facts.browser_visits:
        if v.session_id == facts.session_id or v.sightings is None or v.ip_key is None:
            continue
        elsewhere = v.ip_key != facts.ip_key and v.ip_devices <= BROWSER_MAX_IP_DEVICES
        if elsewhere:
            networks.add(v.ip_key)
        near_here: set[str] = set()
        for s in v.sightings:
            if s.session_id in own or s.email in excluded:
                continue
            if elsewhere:
                shared.setdefault(s.email, set()).add(v.ip_key)
            if interval_gap_minutes(v.start, v.end, s.start, s.end) <= NEAR_WINDOW_MINUTES:
                near_here.add(s.email)
        for email in near_here:
            near[email] = near.get(email, 0) + 1
    for email in sorted(set(shared) | set(near)):
        c = out.setdefault(email, Candidate(email=email))
        c.browser_networks = len(shared.get(email, ()))
        c.browser_networks_total = len(networks)
        c.browser_near = near.get(email, 0)


def _day(value: datetime | None) -> str:
    return f"{value.day} {value.strftime('%b')}" if value else "an earlier day"


def _people(n: int) -> str:
    return "1 customer uses this IP" if n <= 1 else f"{n} customers share this IP"


def device_reason(c: Candidate) -> str:
    if c.dev_n == 1:
        text = f"same browser as the signed-in session of {_day(c.dev_nearest)}"
    else:
        text = (
            f"same browser as {c.dev_n} signed-in sessions of this customer (nearest {_day(c.dev_nearest)})"
        )
    if c.dev_before_first:
        text += "; visited before signing in there"
    if c.dev_customers > 1:
        text += f"; this browser was signed in as {c.dev_customers} different customers"
    return text


def ip_reason(c: Candidate) -> str:
    crowd = _people(c.ip_customers)
    if c.near_gap_minutes is not None:
        minutes = max(0, round(c.near_gap_minutes))
        if minutes == 0:
            when = "during a signed-in session"
        elif c.near_after:
            when = f"{minutes} minute{'s' if minutes != 1 else ''} after sign-in"
        else:
            when = f"{minutes} minute{'s' if minutes != 1 else ''} before sign-in"
        return f"same IP {when}; {crowd}"
    sessions = "1 signed-in session" if c.home_n == 1 else f"{c.home_n} signed-in sessions"
    return f"same IP as {sessions} of this customer; {crowd}"


def browser_reason(c: Candidate) -> str:
    parts = []
    if c.browser_networks:
        n = c.browser_networks
        parts.append(
            f"this browser also visited from {n} other network{'s' if n != 1 else ''} "
            f"where this customer signed in"
        )
    if c.browser_near:
        n = c.browser_near
        parts.append(
            f"{n} other visit{'s' if n != 1 else ''} of this browser came minutes from this customer's "
            f"sign-in on the same network"
        )
    return "; ".join(parts)


def log_count(n: int) -> float:
    return math.log(max(1, n))
