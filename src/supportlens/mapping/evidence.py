"""Evidence: what the stored facts say about who an anonymous session belongs to, in numbers and words.

Everything here is pure Python on plain values, so the benchmark can fit the scorer on exactly the
features the engine computes from the database.
"""

from __future__ import annotations

import bisect
import math
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

# An anonymous session within this gap of a signed-in session on the same IP is "minutes apart".
NEAR_WINDOW_MINUTES = 60.0
# Addresses shared by more customers or browsers than this carry no evidence at all (carrier NAT,
# VPN exits, big offices); counting stops one above the cap so the work per address stays bounded.
MAX_IP_CUSTOMERS = 10
MAX_IP_DEVICES = 25
# A browser's other networks count as evidence only when few browsers use them: a phone hops between
# a carrier's shared addresses, and sharing those with a customer says nothing about whose phone it is.
BROWSER_MAX_IP_DEVICES = 8
# A browser seen in more sessions than this within retention (16 a day for a month) is no one person's:
# a kiosk, an uptime monitor, a bot re-using one Clarity userId. Like a crowded IP it carries no
# evidence, and the engine stops reading its history, so no browser makes every batch cost its size.
MAX_BROWSER_SESSIONS = 500
# Likewise an address seen in more sessions than a household makes while its IPs are kept (7 days by
# default): a few browsers signing in over and over there would make each sign-in re-score them all.
MAX_IP_SESSIONS = 500
# Sessions per sign-in a person's own browser rarely passes (a site remembers a login): past it, the
# browser looks like a shop's or a library's computer (the scorer's `device_log_unsigned`).
UNSIGNED_KNEE = 8


@dataclass(frozen=True, order=True)
class Sighting:
    """A session on which the site named a signed-in customer."""

    start: datetime
    end: datetime
    session_id: uuid.UUID
    email: str


class SightingIndex:
    """Signed-in sessions (of one browser, or behind one network), sorted and grouped by customer.

    Built once per browser or network and shared by all the sessions scored against it, so scoring one
    session costs a few binary searches rather than a pass over the whole history.
    """

    def __init__(self, sightings: Iterable[Sighting] = ()) -> None:
        self.all: list[Sighting] = sorted(sightings)
        self.by_email: dict[str, list[Sighting]] = {}
        for s in self.all:
            self.by_email.setdefault(s.email, []).append(s)
        self.ids = frozenset(s.session_id for s in self.all)
        self._starts = [s.start for s in self.all]
        self._email_starts = {e: [s.start for s in lst] for e, lst in self.by_email.items()}
        self._longest = max((s.end - s.start for s in self.all), default=timedelta(0))

    def __iter__(self) -> Iterator[Sighting]:
        return iter(self.all)

    def __len__(self) -> int:
        return len(self.all)

    def without(self, session_id: uuid.UUID) -> SightingIndex:
        if session_id not in self.ids:
            return self
        return SightingIndex(s for s in self.all if s.session_id != session_id)

    def within(self, start: datetime, end: datetime, minutes: float) -> list[Sighting]:
        """The sightings at most `minutes` from [start, end], in sorted order."""
        reach = timedelta(minutes=minutes)
        lo = bisect.bisect_left(self._starts, start - reach - self._longest)
        hi = bisect.bisect_right(self._starts, end + reach)
        return [s for s in self.all[lo:hi] if interval_gap_minutes(start, end, s.start, s.end) <= minutes]

    def nearest_start(self, email: str, at: datetime) -> datetime:
        """The start of this customer's sighting closest to `at` (the earlier one on a tie)."""
        starts = self._email_starts[email]
        i = bisect.bisect_left(starts, at)
        if i == 0:
            return starts[0]
        if i == len(starts):
            return starts[-1]
        return starts[i - 1] if at - starts[i - 1] <= starts[i] - at else starts[i]


@dataclass(frozen=True)
class Visit:
    """Another session of the same browser, with the signed-in sessions behind its network."""

    session_id: uuid.UUID
    start: datetime
    end: datetime
    ip_key: str | None
    # None when the network is unknown or too crowded to mean anything (as for `ip_sightings`).
    sightings: SightingIndex | None
    ip_devices: int = 0


class BrowserHistory:
    """Every session of one browser, with what each of its networks says, summarised once.

    The summary leaves out sign-ins on this browser itself (they are device evidence) and is then
    adjusted per session for the session's own visit, so scoring all of a browser's sessions costs
    time in proportion to its sessions, not to their square.
    """

    def __init__(self, visits: Iterable[Visit] = ()) -> None:
        self.visits = list(visits)
        self._by_id = {v.session_id: v for v in self.visits}
        self._summary: _BrowserSummary | None = None

    def visit(self, session_id: uuid.UUID) -> Visit | None:
        return self._by_id.get(session_id)

    def summary(self, session_id: uuid.UUID) -> _BrowserSummary:
        if session_id in self._by_id:
            if self._summary is None:
                self._summary = _BrowserSummary(self.visits, frozenset(self._by_id))
            return self._summary
        # A session scored against a history it is not part of (only in hand-made facts).
        return _BrowserSummary(self.visits, frozenset(self._by_id) | {session_id})


class _BrowserSummary:
    """What a browser's visits say, before leaving out the visit of the session being scored."""

    def __init__(self, visits: list[Visit], own: frozenset[uuid.UUID]) -> None:
        # Per network that carries browser evidence: customers who signed in there (on other browsers).
        self.signed_at: dict[str, set[str]] = {}
        # How many of the browser's visits reach each such network.
        self.quiet_visits: dict[str, int] = {}
        # Per visit: customers who signed in minutes from it on the same network.
        self.near_visit: dict[uuid.UUID, set[str]] = {}
        self.near_count: dict[str, int] = {}
        for v in visits:
            if v.sightings is None or v.ip_key is None:
                continue
            if v.ip_devices <= BROWSER_MAX_IP_DEVICES:
                self.quiet_visits[v.ip_key] = self.quiet_visits.get(v.ip_key, 0) + 1
                if v.ip_key not in self.signed_at:  # every visit to a network sees the same sign-ins
                    self.signed_at[v.ip_key] = {s.email for s in v.sightings if s.session_id not in own}
            near = {
                s.email
                for s in v.sightings.within(v.start, v.end, NEAR_WINDOW_MINUTES)
                if s.session_id not in own
            }
            self.near_visit[v.session_id] = near
            for email in near:
                self.near_count[email] = self.near_count.get(email, 0) + 1


@dataclass
class SessionFacts:
    """What is known around one anonymous session."""

    session_id: uuid.UUID
    start: datetime
    end: datetime
    device_sightings: SightingIndex = field(default_factory=SightingIndex)
    # Signed-in sessions behind the same IP; None when the IP is unknown or too crowded to mean anything.
    ip_sightings: SightingIndex | None = None
    ip_customers: int = 0
    ip_devices: int = 0
    ip_key: str | None = None
    # Every session of this browser (this one included): where else the browser goes tells whose it is.
    browser: BrowserHistory = field(default_factory=BrowserHistory)


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
    # Customers who signed in on this browser (whoever c is): a browser several people sign in on, a
    # family or a library computer, is no one person's, so neither its sign-ins nor its visits near a
    # sign-in say much about whose an anonymous session on it is.
    browser_signers: int = 0
    # Sessions of this browser, rounded down to a power of two (`sessions_bucket`): a shop's or a
    # library's computer has many more sessions than sign-ins, a person's own browser few. Rounded so
    # that the engine re-scores a browser's sessions only when the bucket changes, not on every visit.
    browser_sessions: int = 0
    # Whether someone who signed in on this browser also signs in behind this session's address on
    # another browser: a computer several people sign in on is then a family's at their home, not a
    # shop's or a library's. The same for every candidate of the session.
    signers_home: bool = False

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


def sessions_bucket(n: int) -> int:
    """`n` rounded down to a power of two (0 for 0): the browser's session count as the scorer sees it."""
    return 1 << (n.bit_length() - 1) if n > 0 else 0


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
    device = facts.device_sightings.without(facts.session_id)
    for email, mine in device.by_email.items():
        if email in excluded:
            continue
        nearest = device.nearest_start(email, facts.start)
        out[email] = Candidate(
            email=email,
            dev_n=len(mine),
            dev_total=len(device),
            dev_customers=len(device.by_email),
            dev_gap_hours=abs((nearest - facts.start).total_seconds()) / 3600.0,
            dev_nearest=nearest,
            dev_before_first=facts.start < mine[0].start,
        )
    if facts.ip_sightings is not None:
        here = facts.ip_sightings.without(facts.session_id)
        for email, theirs in here.by_email.items():
            if email in excluded:
                continue
            c = out.setdefault(email, Candidate(email=email))
            c.home_n = len(theirs)
            c.ip_customers = facts.ip_customers
            c.ip_devices = facts.ip_devices
        for s in here.within(facts.start, facts.end, NEAR_WINDOW_MINUTES):
            if s.email in excluded:
                continue
            c = out[s.email]
            gap = interval_gap_minutes(facts.start, facts.end, s.start, s.end)
            if c.near_gap_minutes is None or gap < c.near_gap_minutes:
                c.near_gap_minutes = gap
                c.near_after = facts.start >= s.start
    # Customers an agent ruled out for this session do not make its browser a shared one.
    signers = len(set(device.by_email) - excluded)
    if signers < 2:
        _gather_browser(facts, out, excluded)
    sessions = sessions_bucket(len(facts.browser.visits))
    signers_home = facts.ip_sightings is not None and any(
        s.email in device.by_email and s.session_id not in device.ids
        for s in facts.ip_sightings
        if s.session_id != facts.session_id and s.email not in excluded
    )
    for c in out.values():
        c.browser_signers = signers
        c.browser_sessions = sessions
        c.signers_home = signers_home
    return out


def _gather_browser(facts: SessionFacts, out: dict[str, Candidate], excluded: set[str]) -> None:
    """Evidence from the browser's other visits: the networks it shares with a customer's sign-ins.

    A laptop seen at a home address and at an office tells its owner apart from the other people
    of that home; sign-ins on this browser itself are device evidence and are left out here. A browser
    two or more customers signed in on (a family or a library computer) is no one person's, so where
    it goes says nothing about whose it is: the caller does not ask.
    """
    summary = facts.browser.summary(facts.session_id)
    mine = facts.browser.visit(facts.session_id)
    networks = set(summary.quiet_visits) - {facts.ip_key}
    if mine is not None and mine.ip_key in networks and summary.quiet_visits[mine.ip_key] == 1:
        networks.discard(mine.ip_key)  # reached only by this session itself
    shared: dict[str, int] = {}
    for key in networks:
        for email in summary.signed_at[key]:
            shared[email] = shared.get(email, 0) + 1
    near = dict(summary.near_count)
    for email in summary.near_visit.get(facts.session_id, ()):
        near[email] -= 1
    for email in sorted(set(shared) | {e for e, n in near.items() if n > 0}):
        if email in excluded:
            continue
        c = out.setdefault(email, Candidate(email=email))
        c.browser_networks = shared.get(email, 0)
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
    if c.browser_sessions > UNSIGNED_KNEE * c.dev_total:
        text += f"; this browser has {c.browser_sessions}+ sessions, {c.dev_total} of them signed in"
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
