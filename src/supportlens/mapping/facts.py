"""What the mapping engine reads and counts about a neighbourhood: the per-address and per-browser
counters and busy marks, and the sightings (sign-ins and visits) of a browser and of an address, cached
per call in a `RescoreContext`."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from sqlalchemy import func, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.config import Settings
from supportlens.customers.emails import canonical_email
from supportlens.db.base import utcnow
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
from supportlens.mapping.models import (
    MappingBusyBrowser,
    MappingBusyIp,
    MappingIdentity,
    MappingIpCustomer,
    MappingIpDevice,
)
from supportlens.sessions.models import UserSession

# Signed-in sessions longer than this may be missed by the "minutes apart" window query.


def _insert(table: Any) -> Any:
    return pg_insert(table)  # typed loosely: a mapped class's __table__ is a FromClause to mypy


def normalise_email(email: str) -> str:
    return canonical_email(email)


@dataclass(frozen=True)
class FactKeys:
    """Keyed hashes of addresses and customers (on the settings' secret key): the counters never hold a
    raw address or e-mail. Built by the caller from its settings (the mapping worker's runtime, a
    request's settings) and carried by the `RescoreContext`."""

    secret: bytes

    @classmethod
    def of(cls, settings: Settings) -> FactKeys:
        return cls(settings.secret_key.get_secret_value().encode())

    def _keyed(self, value: str) -> str:
        return hmac.new(self.secret, value.encode(), hashlib.sha256).hexdigest()[:32]

    def ip(self, ip: str | None) -> str | None:
        """Keyed hash of a client IP."""
        return self._keyed("ip:" + ip.strip().lower()) if ip else None

    def customer(self, email: str) -> str:
        return self._keyed("customer:" + normalise_email(email))


@dataclass
class RescoreContext:
    """Per-call caches, so sessions sharing a browser or an IP are looked up once; `keys` hash the
    addresses and customers the counters are keyed on."""

    keys: FactKeys
    device: dict[str, SightingIndex] = field(default_factory=dict)
    ip_counts: dict[str, IpCounts] = field(default_factory=dict)
    ip_sightings: dict[str, SightingIndex] = field(default_factory=dict)
    visits: dict[str, BrowserHistory] = field(default_factory=dict)
    # Whether a browser passed the session cap.
    busy: dict[str, bool] = field(default_factory=dict)

    def forget_facts(self) -> None:
        """Drop what was read before this transaction's own changes were flushed."""
        self.device.clear()
        self.ip_sightings.clear()
        self.visits.clear()


# ---- counters --------------------------------------------------------------------------------------


def capped_count(model: Any, key: str, cap: int) -> Any:
    inner = select(model.ip_key).where(model.ip_key == key).limit(cap + 1).subquery()
    return select(func.count()).select_from(inner).scalar_subquery()


class IpCounts(NamedTuple):
    """Who is behind an IP: customers and browsers, each counted up to one past its cap, and whether it
    has been seen in more sessions than a household makes (see note_if_busy)."""

    customers: int
    devices: int
    busy: bool = False


async def ip_counts(db: AsyncSession, ctx: RescoreContext, key: str) -> IpCounts:
    """Who is behind an IP (one small query)."""
    if key not in ctx.ip_counts:
        busy = select(MappingBusyIp.ip_key).where(MappingBusyIp.ip_key == key).exists()
        row = (
            await db.execute(
                select(
                    capped_count(MappingIpCustomer, key, MAX_IP_CUSTOMERS),
                    capped_count(MappingIpDevice, key, MAX_IP_DEVICES),
                    busy,
                )
            )
        ).one()
        ctx.ip_counts[key] = IpCounts(int(row[0]), int(row[1]), bool(row[2]))
    return ctx.ip_counts[key]


async def add_to_counter(
    db: AsyncSession, ctx: RescoreContext, key: str, *, device: str | None, email: str | None
) -> bool:
    """Count a browser or a customer behind an IP unless the IP is already past its cap. True if it grew."""
    counts = await ip_counts(db, ctx, key)
    customers, devices = counts.customers, counts.devices
    if device is not None:
        if devices > MAX_IP_DEVICES:
            return False
        stmt = _insert(MappingIpDevice.__table__).values(ip_key=key, clarity_user_id=device)
    else:
        if customers > MAX_IP_CUSTOMERS or email is None:
            return False
        stmt = _insert(MappingIpCustomer.__table__).values(ip_key=key, customer_key=ctx.keys.customer(email))
    result = await db.execute(stmt.on_conflict_do_nothing())
    if not getattr(result, "rowcount", 0):
        return False
    if device is not None:
        ctx.ip_counts[key] = counts._replace(devices=devices + 1)
    else:
        ctx.ip_counts[key] = counts._replace(customers=customers + 1)
    return True


def is_crowded(counts: IpCounts) -> bool:
    return counts.customers > MAX_IP_CUSTOMERS or counts.devices > MAX_IP_DEVICES or counts.busy


async def busy_browsers(db: AsyncSession, ctx: RescoreContext, devices: set[str]) -> set[str]:
    """Which of these browsers passed the session cap (one small primary-key query for the unknown ones)."""
    unknown = sorted(d for d in devices if d not in ctx.busy)
    for offset in range(0, len(unknown), 500):
        chunk = unknown[offset : offset + 500]
        found = set(
            (
                await db.scalars(
                    select(MappingBusyBrowser.clarity_user_id).where(
                        MappingBusyBrowser.clarity_user_id.in_(chunk)
                    )
                )
            ).all()
        )
        ctx.busy.update((d, d in found) for d in chunk)
    return {d for d in devices if ctx.busy[d]}


async def browser_busy(db: AsyncSession, ctx: RescoreContext, device: str) -> bool:
    return bool(await busy_browsers(db, ctx, {device}))


async def note_if_busy(
    db: AsyncSession, ctx: RescoreContext, device: str, key: str | None, ip: str | None
) -> tuple[bool, bool]:
    """Mark the browser, and the address, busy once more sessions than their caps came from them.

    Returns, for each, whether this batch took it past its cap. A kiosk, an uptime monitor or a script
    would otherwise make every batch on that browser read its whole history, and every sign-in behind
    that address re-score every session there. Both are counted in one round trip, each up to one past
    its cap (index range scans); a busy browser is never counted again, nor a crowded address.
    """
    count_browser = not ctx.busy.get(device)
    count_ip = key is not None and ip is not None and not is_crowded(await ip_counts(db, ctx, key))
    if not (count_browser or count_ip):
        return False, False

    def capped(where: Any, cap: int) -> Any:
        sessions = select(UserSession.id).where(where).limit(cap + 1).subquery()
        return select(func.count()).select_from(sessions).scalar_subquery()

    marked = select(MappingBusyBrowser.clarity_user_id).where(MappingBusyBrowser.clarity_user_id == device)
    row = (
        await db.execute(
            select(
                marked.exists() if count_browser else literal(True),
                capped(UserSession.clarity_user_id == device, rules.MAX_BROWSER_SESSIONS)
                if count_browser
                else literal(0),
                capped(UserSession.client_ip == ip, rules.MAX_IP_SESSIONS) if count_ip else literal(0),
            )
        )
    ).one()
    browser_crossed = ip_crossed = False
    if count_browser:
        ctx.busy[device] = bool(row[0])
        if not row[0] and int(row[1]) > rules.MAX_BROWSER_SESSIONS:
            stmt = _insert(MappingBusyBrowser.__table__).values(clarity_user_id=device, since=utcnow())
            browser_crossed = bool(getattr(await db.execute(stmt.on_conflict_do_nothing()), "rowcount", 0))
            ctx.busy[device] = True
    if count_ip and key is not None and int(row[2]) > rules.MAX_IP_SESSIONS:
        stmt = _insert(MappingBusyIp.__table__).values(ip_key=key, since=utcnow())
        ip_crossed = bool(getattr(await db.execute(stmt.on_conflict_do_nothing()), "rowcount", 0))
        ctx.ip_counts[key] = ctx.ip_counts[key]._replace(busy=True)
    return browser_crossed, ip_crossed


# ---- facts -----------------------------------------------------------------------------------------


SIGHTING_COLUMNS = (
    MappingIdentity.session_id,
    MappingIdentity.customer_email,
    MappingIdentity.session_start,
    MappingIdentity.session_end,
)


def sighting_index(rows: Any) -> SightingIndex:
    return SightingIndex(
        Sighting(start=r.session_start, end=r.session_end, session_id=r.session_id, email=r.customer_email)
        for r in rows
    )


async def device_sightings(db: AsyncSession, ctx: RescoreContext, device: str) -> SightingIndex:
    if device not in ctx.device:
        rows = await db.execute(select(*SIGHTING_COLUMNS).where(MappingIdentity.clarity_user_id == device))
        ctx.device[device] = sighting_index(rows)
    return ctx.device[device]


async def ip_sightings(db: AsyncSession, ctx: RescoreContext, key: str) -> SightingIndex:
    if key not in ctx.ip_sightings:
        rows = await db.execute(select(*SIGHTING_COLUMNS).where(MappingIdentity.ip_key == key))
        ctx.ip_sightings[key] = sighting_index(rows)
    return ctx.ip_sightings[key]


async def network_sightings(db: AsyncSession, ctx: RescoreContext, key: str | None) -> SightingIndex | None:
    """Signed-in sessions behind an address, or None when it is unknown or too crowded to mean anything."""
    if key is None or is_crowded(await ip_counts(db, ctx, key)):
        return None
    return await ip_sightings(db, ctx, key)


async def network_browsers(db: AsyncSession, ctx: RescoreContext, key: str | None) -> int:
    return 0 if key is None else (await ip_counts(db, ctx, key))[1]


async def browser_visits(db: AsyncSession, ctx: RescoreContext, device: str) -> BrowserHistory:
    """Every session of a browser with the sign-ins behind its network (one small query per network)."""
    if device not in ctx.visits:
        rows = (
            await db.execute(
                select(
                    UserSession.id, UserSession.client_ip, UserSession.session_start, UserSession.session_end
                ).where(UserSession.clarity_user_id == device)
            )
        ).all()
        visits = []
        for row in sorted(rows, key=lambda r: r.id):
            key = ctx.keys.ip(row.client_ip)
            visits.append(
                Visit(
                    session_id=row.id,
                    start=row.session_start,
                    end=row.session_end,
                    ip_key=key,
                    sightings=await network_sightings(db, ctx, key),
                    ip_devices=await network_browsers(db, ctx, key),
                )
            )
        ctx.visits[device] = BrowserHistory(visits)
    return ctx.visits[device]


async def session_facts(db: AsyncSession, session: UserSession, ctx: RescoreContext) -> SessionFacts:
    facts = SessionFacts(session_id=session.id, start=session.session_start, end=session.session_end)
    busy = await browser_busy(db, ctx, session.clarity_user_id)
    if not busy:
        facts.device_sightings = await device_sightings(db, ctx, session.clarity_user_id)
    key = ctx.keys.ip(session.client_ip)
    if key is not None:
        counts = await ip_counts(db, ctx, key)
        facts.ip_customers, facts.ip_devices = counts.customers, counts.devices
        facts.ip_key = key
        facts.ip_sightings = await network_sightings(db, ctx, key)
    if not busy:
        facts.browser = await browser_visits(db, ctx, session.clarity_user_id)
    return facts
