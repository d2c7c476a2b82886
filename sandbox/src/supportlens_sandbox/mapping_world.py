"""A labelled synthetic world for measuring the mapping engine (bench/mapping.py).

People live in households that share a home IP (a few households get a new address mid-month);
some households share a family computer; many people work in offices whose address is shared by
dozens of browsers; phones use mobile carriers whose addresses (carrier-grade NAT) are shared by
thousands; some people browse through VPN exits. Customers have 1-3 browsers of their own; other
household members and plain visitors have none of our accounts and never sign in. Roughly 40% of
sessions are signed in, either from the start or part-way through (the session's later batch names
the customer). Everything is drawn from one seeded random generator, so a seed is a world. Computers
several people sign in on (a family computer both of two customers use, shop and library computers)
and the automated traffic come from random streams of their own, so adding them leaves everyone
else's sessions as they were.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from supportlens.mapping import evidence as rules
from supportlens.mapping.evidence import (
    MAX_IP_CUSTOMERS,
    MAX_IP_DEVICES,
    BrowserHistory,
    SessionFacts,
    Sighting,
    SightingIndex,
    Visit,
)


@dataclass
class Device:
    id: str
    kind: str  # laptop | desktop | phone | tablet
    users: list[Person] = field(default_factory=list)
    login_rate: float = 0.0


@dataclass
class Person:
    id: int
    email: str | None  # None: not one of our customers (never signs in)
    household: Household
    office_ip: str | None = None
    carrier: int = 0
    vpn: bool = False
    devices: list[Device] = field(default_factory=list)
    visits: int = 0


@dataclass
class Household:
    id: int
    home_ip: str
    moved_ip: str | None = None
    moved_at_day: float = 99.0
    members: list[Person] = field(default_factory=list)


@dataclass
class WorldSession:
    device: str
    session: str
    ip: str
    start: datetime
    end: datetime
    truth: str | None  # the customer this session really belongs to
    batches: int  # how many ingest batches the session is sent as
    login_batch: int | None  # first batch that names the customer (None: never signed in)
    device_kind: str
    # What the page's SDK and the browser say; automated traffic is never anyone's (truth None).
    user_agent: str = ""
    webdriver: bool = False
    interacted: bool | None = True
    automated: str | None = None  # the reason the product must find (sessions/automation.py)
    signs_in_as: str | None = None  # whom a session signs in as when that is not its truth (a test account)
    shared: str | None = None  # "family" or "public": a computer several people sign in on (shared_devices)

    @property
    def signed_in(self) -> bool:
        return self.login_batch is not None

    @property
    def carries_evidence(self) -> bool:
        return self.automated is None and self.interacted is not False


@dataclass
class World:
    seed: int
    start: datetime
    days: int
    customers: list[str]
    sessions: list[WorldSession]

    @property
    def signed_in_share(self) -> float:
        return sum(s.signed_in for s in self.sessions) / max(1, len(self.sessions))


def _ip(rng: random.Random, first: int, used: set[str]) -> str:
    while True:
        ip = f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        if ip not in used:
            used.add(ip)
            return ip


BROWSER_AGENTS = {
    "laptop": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "desktop": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "phone": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    "tablet": "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.0 Mobile/15E148 Safari/604.1",
}
MONITOR_AGENT = "Mozilla/5.0 (compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)"
HEADLESS_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 "
    "Safari/537.36"
)
CURL_AGENT = "curl/8.5.0"


def build_world(
    seed: int = 42,
    customers: int = 2000,
    days: int = 30,
    *,
    end: datetime | None = None,
    automated: bool = False,
    shared: bool = True,
) -> World:
    """People in households on their devices and networks; with `automated`, also the automated traffic
    a real site gets (drawn from its own random stream, so the people's sessions are the same either
    way): uptime monitors, headless scripts (some signed in as a customer), curl loops and browser-like
    scrapers bursting from customers' own addresses minutes after they signed in, and empty sessions
    in which no person acted. With `shared` (the default), also computers several people sign in on
    (see `_shared_devices`), likewise from their own stream."""
    rng = random.Random(seed)
    # A world is a function of its seed and its last day (today, so events pass ingest's age check).
    end = end or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    used: set[str] = set()
    people: list[Person] = []
    households: list[Household] = []
    devices: list[Device] = []
    carriers = [[_ip(rng, 100, used) for _ in range(40)] for _ in range(4)]
    vpn_exits = [_ip(rng, 185, used) for _ in range(12)]
    offices: list[str] = []

    def new_device(kind: str) -> Device:
        d = Device(id=f"d{seed}x{len(devices)}", kind=kind)
        devices.append(d)
        return d

    n_customers = 0
    while n_customers < customers:
        size = rng.choices([1, 2, 3, 4], weights=[55, 28, 11, 6])[0]
        h = Household(id=len(households), home_ip=_ip(rng, 24, used))
        if rng.random() < 0.07:
            h.moved_ip = _ip(rng, 24, used)
            h.moved_at_day = rng.uniform(5, days - 5)
        households.append(h)
        for m in range(size):
            is_customer = m == 0 or rng.random() < 0.7
            email = f"c{seed}-{n_customers}@example.com" if is_customer and n_customers < customers else None
            if email:
                n_customers += 1
            p = Person(
                id=len(people), email=email, household=h, carrier=rng.randrange(4), vpn=rng.random() < 0.07
            )
            if rng.random() < 0.45:
                if not offices or rng.random() < 1 / 10:
                    offices.append(_ip(rng, 62, used))
                p.office_ip = rng.choice(offices)
            h.members.append(p)
            people.append(p)
            n_dev = rng.choices([1, 2, 3], weights=[40, 40, 20])[0] if email else 1
            kinds = rng.sample(["laptop", "phone", "tablet", "desktop"], k=n_dev)
            for kind in kinds:
                d = new_device(kind)
                d.users.append(p)
                p.devices.append(d)
        if size >= 2 and rng.random() < 0.35:
            family = new_device("desktop")
            for p in h.members:
                family.users.append(p)
                p.devices.append(family)
    # Plain visitors (most of a site's traffic): never customers; one browser each.
    for _ in range(customers * 3 // 2):
        h = Household(id=len(households), home_ip=_ip(rng, 24, used))
        households.append(h)
        p = Person(id=len(people), email=None, household=h, carrier=rng.randrange(4), vpn=rng.random() < 0.05)
        if rng.random() < 0.4 and offices:
            p.office_ip = rng.choice(offices)
        d = new_device(rng.choice(["laptop", "phone", "desktop"]))
        d.users.append(p)
        p.devices.append(d)
        h.members.append(p)
        people.append(p)

    for d in devices:
        # How often the site sees this browser signed in (a remembered login, or signing in to pay).
        d.login_rate = 0.0 if rng.random() < 0.06 else rng.betavariate(2.8, 1.8)

    sessions: list[WorldSession] = []

    def where(p: Person, d: Device, at: datetime) -> str:
        day = (at - start).total_seconds() / 86400
        home = p.household.moved_ip if p.household.moved_ip and day >= p.household.moved_at_day else None
        home = home or p.household.home_ip
        work_hours = at.weekday() < 5 and 9 <= at.hour < 17
        if d.kind == "desktop":
            return (
                p.office_ip
                if (p.office_ip and work_hours and len(d.users) == 1 and rng.random() < 0.5)
                else home
            )
        if d.kind in ("laptop", "tablet"):
            if p.vpn and rng.random() < 0.6:
                return rng.choice(vpn_exits)
            if p.office_ip and work_hours and rng.random() < 0.7:
                return p.office_ip
            return home
        # phone
        if p.office_ip and work_hours and rng.random() < 0.25:
            return p.office_ip
        if not work_hours and rng.random() < 0.55:
            return home
        return rng.choice(carriers[p.carrier])

    signed_in_before: set[tuple[str, str]] = set()

    def add_session(p: Person, d: Device, at: datetime, ip: str | None = None) -> str:
        length = timedelta(minutes=rng.uniform(1, 25))
        drawn = rng.choice([1, 1, 2, 2, 3])
        login: int | None = None
        # Sites remember a login: once signed in on a browser, later visits usually start signed in.
        remembered = p.email is not None and (d.id, p.email) in signed_in_before and rng.random() < 0.5
        if p.email and (remembered or rng.random() < d.login_rate):
            login = 0 if remembered or rng.random() < 0.6 else drawn - 1
            signed_in_before.add((d.id, p.email))
        # One batch per session, or two when the customer signs in part-way (anonymous, then named).
        batches = 2 if login else 1
        login = min(login, 1) if login else login
        ip = ip or where(p, d, at)
        sessions.append(
            WorldSession(
                device=d.id,
                session=f"s{seed}x{len(sessions)}",
                ip=ip,
                start=at,
                end=at + length,
                truth=p.email,
                batches=batches,
                login_batch=login,
                device_kind=d.kind,
                user_agent=BROWSER_AGENTS[d.kind],
            )
        )
        return ip

    for p in people:
        visits = 1 + min(40, int(rng.expovariate(1 / 4.0))) if p.email else rng.choice([1, 1, 2, 3])
        for _ in range(visits):
            day = rng.uniform(0, days - 0.05)
            at = start + timedelta(days=int(day))
            hour = rng.choices(
                range(24), weights=[1, 1, 1, 1, 1, 2, 3, 5, 6, 7, 7, 7, 8, 7, 7, 7, 7, 7, 8, 9, 10, 9, 6, 3]
            )[0]
            at = at + timedelta(hours=hour, minutes=rng.uniform(0, 59))
            if at >= end - timedelta(hours=1):
                at = end - timedelta(hours=2)
            weights = [3.0 if i == 0 else 1.0 for i in range(len(p.devices))]
            d = rng.choices(p.devices, weights=weights)[0]
            first_ip = add_session(p, d, at)
            if len(p.devices) > 1 and rng.random() < 0.3:
                # Browse on one device, then continue on another a few minutes later, usually on the
                # same network (the phone joins the home or office Wi-Fi).
                other = rng.choice([x for x in p.devices if x is not d])
                same_place = first_ip in (p.household.home_ip, p.household.moved_ip, p.office_ip)
                ip = first_ip if same_place and rng.random() < 0.8 else None
                add_session(p, other, at + timedelta(minutes=rng.uniform(2, 40)), ip)
    if automated:
        sessions.extend(_automated_traffic(seed, start, end, sessions, used))
    if shared:
        sessions.extend(_shared_devices(seed, start, end, households, people, used, len(sessions)))
    sessions.sort(key=lambda s: (s.start, s.session))
    emails = [p.email for p in people if p.email]
    return World(seed=seed, start=start, days=days, customers=emails, sessions=sessions)


def _automated_traffic(
    seed: int, start: datetime, end: datetime, people: list[WorldSession], used: set[str]
) -> list[WorldSession]:
    rng = random.Random(f"automated/{seed}")
    out: list[WorldSession] = []
    sign_ins = [s for s in people if s.signed_in and s.truth]
    span = (end - start).total_seconds()

    def add(
        at: datetime,
        ip: str,
        agent: str,
        reason: str | None,
        *,
        seconds: float = 5.0,
        webdriver: bool = False,
        interacted: bool | None = None,
        signs_in_as: str | None = None,
    ) -> None:
        n = len(out)
        out.append(
            WorldSession(
                device=f"a{seed}x{n}",
                session=f"a{seed}s{n}",
                ip=ip,
                start=at,
                end=at + timedelta(seconds=seconds),
                truth=None,
                batches=1,
                login_batch=0 if signs_in_as else None,
                device_kind="desktop",
                user_agent=agent,
                webdriver=webdriver,
                interacted=interacted,
                automated=reason,
                signs_in_as=signs_in_as,
            )
        )

    # Two uptime monitors: a fresh browser every hour from their own addresses.
    for m in range(2):
        ip = _ip(rng, 52, used)
        for hour in range(int(span // 3600)):
            add(start + timedelta(hours=hour, minutes=m * 7), ip, MONITOR_AGENT, "bot", interacted=False)
    # Headless scripts under automation: 150 from data-centre addresses, 30 of them signed in as a real
    # customer (the merchant's own end-to-end test account), 20 more from customers' home addresses.
    for i in range(170):
        if i < 150:
            ip = _ip(rng, 34, used)
        else:
            ip = rng.choice(sign_ins).ip
        who = rng.choice(sign_ins).truth if i < 30 else None
        add(
            start + timedelta(seconds=rng.uniform(0, span - 60)),
            ip,
            HEADLESS_AGENT,
            "headless",
            webdriver=True,
            interacted=True,
            seconds=20,
            signs_in_as=who,
        )
    # The demo's case: curl loops of empty sessions from a customer's own address minutes after they
    # signed in (12 bursts of 30 in a minute), and browser-like scrapers the same way (8 bursts of 40,
    # a browser User-Agent, no SDK flags): the rate rule must catch those.
    for burst in range(20):
        anchor = rng.choice(sign_ins)
        t0 = anchor.end + timedelta(minutes=rng.uniform(1, 10))
        scraper = burst >= 12
        for k in range(40 if scraper else 30):
            add(
                t0 + timedelta(seconds=k * 1.4),
                anchor.ip,
                BROWSER_AGENTS["desktop"] if scraper else CURL_AGENT,
                "rate" if scraper else "script",
                seconds=0.5,
            )
    # Empty sessions in which no person acted (link previews, prefetches, a tab opened and shut) at
    # customers' addresses within minutes of a sign-in: no evidence either way.
    for _ in range(300):
        anchor = rng.choice(sign_ins)
        add(
            anchor.start + timedelta(minutes=rng.uniform(-20, 30)),
            anchor.ip,
            BROWSER_AGENTS[rng.choice(["laptop", "phone"])],
            None,
            interacted=False,
        )
    return out


def _shared_devices(
    seed: int,
    start: datetime,
    end: datetime,
    households: list[Household],
    people: list[Person],
    used: set[str],
    numbered_from: int,
) -> list[WorldSession]:
    """Computers several people sign in on, drawn from their own random stream (so everyone else's
    sessions stay the same with or without them):

    - family computers: two customers of one household each sign in on it at least once and each
      also use it anonymously, from the home address;
    - shop and library computers: one to three machines behind the place's own address, used by
      many people from the whole world (customers or not), a third of the customers signing in.
    """
    rng = random.Random(f"shared/{seed}")
    customers = sum(1 for p in people if p.email)
    out: list[WorldSession] = []
    span_days = (end - start).total_seconds() / 86400

    def add(device: str, p: Person, ip: str, at: datetime, signed_in: bool, kind: str) -> None:
        partway = signed_in and rng.random() < 0.3  # signs in on the second batch
        out.append(
            WorldSession(
                device=device,
                session=f"f{seed}x{numbered_from + len(out)}",
                ip=ip,
                start=at,
                end=at + timedelta(minutes=rng.uniform(2, 30)),
                truth=p.email,
                batches=2 if partway else 1,
                login_batch=(1 if partway else 0) if signed_in else None,
                device_kind="desktop",
                user_agent=BROWSER_AGENTS["desktop"],
                shared=kind,
            )
        )

    def when(first_hour: int, last_hour: int) -> datetime:
        day = int(rng.uniform(0, span_days - 1))
        at = start + timedelta(days=day, hours=rng.randint(first_hour, last_hour), minutes=rng.uniform(0, 59))
        return min(at, end - timedelta(hours=2))

    families = [h for h in households if sum(1 for p in h.members if p.email) >= 2]
    for n in range(min(len(families), max(1, customers // 40))):
        h = families.pop(rng.randrange(len(families)))
        pair = rng.sample([p for p in h.members if p.email], 2)
        device = f"fam{seed}x{n}"
        for p in pair:
            visits = rng.randint(3, 10)
            for k in range(visits):
                at = when(7, 22)
                day = (at - start).total_seconds() / 86400
                ip = h.moved_ip if h.moved_ip and day >= h.moved_at_day else h.home_ip
                # The first visit signs in and the second does not, so both people do both.
                add(device, p, ip, at, k == 0 or (k > 1 and rng.random() < 0.35), "family")
    for n in range(max(1, customers // 250)):
        ip = _ip(rng, 81, used)
        for m in range(rng.randint(1, 3)):
            device = f"pub{seed}x{n}x{m}"
            for _ in range(rng.randint(20, 60)):
                p = rng.choice(people)
                at = when(9, 19)
                for _ in range(rng.choice([1, 1, 1, 2])):  # now and then the same person comes back
                    add(device, p, ip, at, p.email is not None and rng.random() < 0.33, "public")
                    at = min(at + timedelta(days=rng.uniform(0.5, 7)), end - timedelta(hours=2))
    return out


def offline_facts(world: World) -> list[tuple[WorldSession, SessionFacts]]:
    """The facts the engine would hold once the whole world is ingested, for every anonymous session.

    Used to fit the scorer's weights without a database; the benchmark then measures the real path.
    """
    import uuid

    ids = {s.session: uuid.uuid5(uuid.NAMESPACE_URL, s.session) for s in world.sessions}
    by_device: dict[str, list[Sighting]] = {}
    by_ip: dict[str, list[Sighting]] = {}
    ip_customers: dict[str, set[str]] = {}
    ip_devices: dict[str, set[str]] = {}
    ip_sessions: dict[str, int] = {}
    people = [s for s in world.sessions if s.carries_evidence]
    for s in people:
        ip_devices.setdefault(s.ip, set()).add(s.device)
        ip_sessions[s.ip] = ip_sessions.get(s.ip, 0) + 1
        if s.signed_in and s.truth:
            sighting = Sighting(start=s.start, end=s.end, session_id=ids[s.session], email=s.truth)
            by_device.setdefault(s.device, []).append(sighting)
            by_ip.setdefault(s.ip, []).append(sighting)
            ip_customers.setdefault(s.ip, set()).add(s.truth)

    def crowded(ip: str) -> bool:
        customers, devices = len(ip_customers.get(ip, ())), len(ip_devices.get(ip, ()))
        busy = ip_sessions.get(ip, 0) > rules.MAX_IP_SESSIONS
        return customers > MAX_IP_CUSTOMERS or devices > MAX_IP_DEVICES or busy

    # One index per browser and per network, shared by all the sessions scored against it (as the
    # engine shares them within one re-score).
    device_index = {d: SightingIndex(sightings) for d, sightings in by_device.items()}
    ip_index = {ip: SightingIndex(sightings) for ip, sightings in by_ip.items()}

    def network(ip: str) -> SightingIndex | None:
        return None if crowded(ip) else ip_index.get(ip, SightingIndex())

    visits: dict[str, list[Visit]] = {}
    for s in people:
        visits.setdefault(s.device, []).append(
            Visit(
                session_id=ids[s.session],
                start=s.start,
                end=s.end,
                ip_key=s.ip,
                sightings=network(s.ip),
                ip_devices=min(len(ip_devices.get(s.ip, ())), MAX_IP_DEVICES + 1),
            )
        )
    histories = {d: BrowserHistory(v) for d, v in visits.items()}
    # A browser past the session cap carries no device or browser evidence (as in the engine).
    busy_browsers = {d for d, v in visits.items() if len(v) > rules.MAX_BROWSER_SESSIONS}
    out: list[tuple[WorldSession, SessionFacts]] = []
    for s in people:
        if s.signed_in:
            continue
        customers_n = min(len(ip_customers.get(s.ip, ())), MAX_IP_CUSTOMERS + 1)
        devices_n = min(len(ip_devices.get(s.ip, ())), MAX_IP_DEVICES + 1)
        facts = SessionFacts(
            session_id=ids[s.session],
            start=s.start,
            end=s.end,
            device_sightings=SightingIndex()
            if s.device in busy_browsers
            else device_index.get(s.device, SightingIndex()),
            ip_sightings=network(s.ip),
            ip_customers=customers_n,
            ip_devices=devices_n,
            ip_key=s.ip,
            browser=BrowserHistory() if s.device in busy_browsers else histories[s.device],
        )
        out.append((s, facts))
    return out
