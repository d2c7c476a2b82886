"""The mapping engine: turns what ingest learns about a session into session<->customer links.

Ingest stores a batch and enqueues a mapping job in the same transaction; the mapping worker then calls
`on_ingest` for it (supportlens.tasks.mapping), one job at a time, so no two re-scores interleave.

The work is proportional to the batch: only sessions whose evidence may have changed are re-scored,
and they are found through small index range scans (this browser's signed-in sessions, this IP's
signed-in sessions within minutes, or every session of an IP only while that IP is shared by few
enough people to carry evidence at all). Each re-score recomputes the session's links from the
stored facts, so the final links do not depend on the order in which batches arrived.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import and_, delete, func, literal, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.capture import automation
from supportlens.config import get_settings
from supportlens.customers.emails import canonical_email
from supportlens.db.base import utcnow
from supportlens.mapping import evidence as rules
from supportlens.mapping import scoring
from supportlens.mapping.evidence import (
    MAX_IP_CUSTOMERS,
    MAX_IP_DEVICES,
    NEAR_WINDOW_MINUTES,
    BrowserHistory,
    SessionFacts,
    Sighting,
    SightingIndex,
    Visit,
    gather,
)
from supportlens.mapping.models import (
    MappingBusyBrowser,
    MappingBusyIp,
    MappingIdentity,
    MappingIpCustomer,
    MappingIpDevice,
    SessionCustomerMapping,
)
from supportlens.sessions.models import UserSession

# Signed-in sessions longer than this may be missed by the "minutes apart" window query.
MAX_SESSION_HOURS = 6
# The one mutex of link writers: the mapping worker's job and an agent's manual decision each hold it
# for their transaction (see mapping_mutex).
MAPPING_MUTEX = "mapping"
EMAIL_MATCH_REASON = "signed in as this customer on this session"


@dataclass(frozen=True)
class CustomerRef:
    """The customer the site named as signed in (SupportLens.identify)."""

    email: str
    name: str | None = None
    external_id: str | None = None


def normalise_email(email: str) -> str:
    return canonical_email(email)


def _keyed(value: str) -> str:
    key = get_settings().secret_key.get_secret_value().encode()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]


def ip_key(ip: str | None) -> str | None:
    """Keyed hash of a client IP: the counters never hold a raw address."""
    return _keyed("ip:" + ip.strip().lower()) if ip else None


def customer_key(email: str) -> str:
    return _keyed("customer:" + normalise_email(email))


def _insert(table: Any) -> Any:
    return pg_insert(table)


@dataclass
class _Context:
    """Per-call caches, so sessions sharing a browser or an IP are looked up once."""

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


async def mapping_mutex(db: AsyncSession) -> None:
    """Hold the mapping mutex until the end of this transaction (a PostgreSQL advisory lock).

    Links are written by one mapping job at a time (the queue's lock, see supportlens.tasks) and by an
    agent's manual decision or an erasure: this mutex keeps those from interleaving with a job, so a
    job never scores from, or overwrites, a view that another writer changed under it.
    """
    await db.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": MAPPING_MUTEX})


# ---- counters --------------------------------------------------------------------------------------


def _capped_count(model: Any, key: str, cap: int) -> Any:
    inner = select(model.ip_key).where(model.ip_key == key).limit(cap + 1).subquery()
    return select(func.count()).select_from(inner).scalar_subquery()


class IpCounts(NamedTuple):
    """Who is behind an IP: customers and browsers, each counted up to one past its cap, and whether it
    has been seen in more sessions than a household makes (see _note_if_busy)."""

    customers: int
    devices: int
    busy: bool = False


async def _ip_counts(db: AsyncSession, ctx: _Context, key: str) -> IpCounts:
    """Who is behind an IP (one small query)."""
    if key not in ctx.ip_counts:
        busy = select(MappingBusyIp.ip_key).where(MappingBusyIp.ip_key == key).exists()
        row = (
            await db.execute(
                select(
                    _capped_count(MappingIpCustomer, key, MAX_IP_CUSTOMERS),
                    _capped_count(MappingIpDevice, key, MAX_IP_DEVICES),
                    busy,
                )
            )
        ).one()
        ctx.ip_counts[key] = IpCounts(int(row[0]), int(row[1]), bool(row[2]))
    return ctx.ip_counts[key]


async def _add_to_counter(
    db: AsyncSession, ctx: _Context, key: str, *, device: str | None, email: str | None
) -> bool:
    """Count a browser or a customer behind an IP unless the IP is already past its cap. True if it grew."""
    counts = await _ip_counts(db, ctx, key)
    customers, devices = counts.customers, counts.devices
    if device is not None:
        if devices > MAX_IP_DEVICES:
            return False
        stmt = _insert(MappingIpDevice.__table__).values(ip_key=key, clarity_user_id=device)
    else:
        if customers > MAX_IP_CUSTOMERS or email is None:
            return False
        stmt = _insert(MappingIpCustomer.__table__).values(ip_key=key, customer_key=customer_key(email))
    result = await db.execute(stmt.on_conflict_do_nothing())
    if not getattr(result, "rowcount", 0):
        return False
    if device is not None:
        ctx.ip_counts[key] = counts._replace(devices=devices + 1)
    else:
        ctx.ip_counts[key] = counts._replace(customers=customers + 1)
    return True


def _crowded(counts: IpCounts) -> bool:
    return counts.customers > MAX_IP_CUSTOMERS or counts.devices > MAX_IP_DEVICES or counts.busy


async def _busy_browsers(db: AsyncSession, ctx: _Context, devices: set[str]) -> set[str]:
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


async def _browser_busy(db: AsyncSession, ctx: _Context, device: str) -> bool:
    return bool(await _busy_browsers(db, ctx, {device}))


async def _note_if_busy(
    db: AsyncSession, ctx: _Context, device: str, key: str | None, ip: str | None
) -> tuple[bool, bool]:
    """Mark the browser, and the address, busy once more sessions than their caps came from them.

    Returns, for each, whether this batch took it past its cap. A kiosk, an uptime monitor or a script
    would otherwise make every batch on that browser read its whole history, and every sign-in behind
    that address re-score every session there. Both are counted in one round trip, each up to one past
    its cap (index range scans); a busy browser is never counted again, nor a crowded address.
    """
    count_browser = not ctx.busy.get(device)
    count_ip = key is not None and ip is not None and not _crowded(await _ip_counts(db, ctx, key))
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


_SIGHTING_COLUMNS = (
    MappingIdentity.session_id,
    MappingIdentity.customer_email,
    MappingIdentity.session_start,
    MappingIdentity.session_end,
)


def _sightings(rows: Any) -> SightingIndex:
    return SightingIndex(
        Sighting(start=r.session_start, end=r.session_end, session_id=r.session_id, email=r.customer_email)
        for r in rows
    )


async def _device_sightings(db: AsyncSession, ctx: _Context, device: str) -> SightingIndex:
    if device not in ctx.device:
        rows = await db.execute(select(*_SIGHTING_COLUMNS).where(MappingIdentity.clarity_user_id == device))
        ctx.device[device] = _sightings(rows)
    return ctx.device[device]


async def _ip_sightings(db: AsyncSession, ctx: _Context, key: str) -> SightingIndex:
    if key not in ctx.ip_sightings:
        rows = await db.execute(select(*_SIGHTING_COLUMNS).where(MappingIdentity.ip_key == key))
        ctx.ip_sightings[key] = _sightings(rows)
    return ctx.ip_sightings[key]


async def _network_sightings(db: AsyncSession, ctx: _Context, key: str | None) -> SightingIndex | None:
    """Signed-in sessions behind an address, or None when it is unknown or too crowded to mean anything."""
    if key is None or _crowded(await _ip_counts(db, ctx, key)):
        return None
    return await _ip_sightings(db, ctx, key)


async def _network_browsers(db: AsyncSession, ctx: _Context, key: str | None) -> int:
    return 0 if key is None else (await _ip_counts(db, ctx, key))[1]


async def _browser_visits(db: AsyncSession, ctx: _Context, device: str) -> BrowserHistory:
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
            key = ip_key(row.client_ip)
            visits.append(
                Visit(
                    session_id=row.id,
                    start=row.session_start,
                    end=row.session_end,
                    ip_key=key,
                    sightings=await _network_sightings(db, ctx, key),
                    ip_devices=await _network_browsers(db, ctx, key),
                )
            )
        ctx.visits[device] = BrowserHistory(visits)
    return ctx.visits[device]


async def session_facts(db: AsyncSession, session: UserSession, ctx: _Context | None = None) -> SessionFacts:
    ctx = ctx or _Context()
    facts = SessionFacts(session_id=session.id, start=session.session_start, end=session.session_end)
    busy = await _browser_busy(db, ctx, session.clarity_user_id)
    if not busy:
        facts.device_sightings = await _device_sightings(db, ctx, session.clarity_user_id)
    key = ip_key(session.client_ip)
    if key is not None:
        counts = await _ip_counts(db, ctx, key)
        facts.ip_customers, facts.ip_devices = counts.customers, counts.devices
        facts.ip_key = key
        facts.ip_sightings = await _network_sightings(db, ctx, key)
    if not busy:
        facts.browser = await _browser_visits(db, ctx, session.clarity_user_id)
    return facts


# ---- re-scoring ------------------------------------------------------------------------------------


def _email_match_evidence() -> list[dict[str, object]]:
    return [{"method": "email_match", "score": 1.0, "reason": EMAIL_MATCH_REASON}]


async def rescore(db: AsyncSession, session: UserSession, ctx: _Context | None = None) -> None:
    """Recompute every automatic link of one session from the stored facts; manual decisions stay."""
    await rescore_sessions(db, [session], ctx)


async def rescore_many(db: AsyncSession, ids: set[uuid.UUID], ctx: _Context | None = None) -> None:
    """Re-score the anonymous ones among `ids`.

    A session the site named a customer on links by that name alone (email_match), whatever its browser
    and network say, so the neighbours' facts cannot move it: on a browser that usually signs in,
    skipping them is most of a sign-in's fan-out. Whether a session is signed in is read again under
    the same transaction as the re-score.
    """
    ctx = ctx or _Context()
    ordered = sorted(ids)
    signed_in = select(MappingIdentity.session_id).where(MappingIdentity.session_id == UserSession.id)
    for offset in range(0, len(ordered), 500):
        chunk = ordered[offset : offset + 500]
        anonymous = select(UserSession).where(UserSession.id.in_(chunk), ~signed_in.exists())
        sessions = list((await db.scalars(anonymous)).all())
        await _busy_browsers(db, ctx, {s.clarity_user_id for s in sessions})  # one query, not one each
        await rescore_sessions(db, sessions, ctx)


async def rescore_sessions(
    db: AsyncSession,
    sessions: list[UserSession],
    ctx: _Context | None = None,
    *,
    identities: dict[uuid.UUID, list[str]] | None = None,
) -> None:
    """`identities`: each session's signed-in e-mails when the caller already holds them."""
    ctx = ctx or _Context()
    if not sessions:
        return
    ids = [s.id for s in sessions]
    existing_by: dict[uuid.UUID, dict[str, SessionCustomerMapping]] = {i: {} for i in ids}
    for row in (
        await db.scalars(select(SessionCustomerMapping).where(SessionCustomerMapping.session_id.in_(ids)))
    ).all():
        existing_by[row.session_id][row.customer_email] = row
    identities_by: dict[uuid.UUID, list[str]] = {i: [] for i in ids}
    if identities is not None and set(identities) >= set(ids):
        identities_by = {i: list(identities[i]) for i in ids}
    else:
        for sid, email in (
            await db.execute(
                select(MappingIdentity.session_id, MappingIdentity.customer_email).where(
                    MappingIdentity.session_id.in_(ids)
                )
            )
        ).all():
            identities_by[sid].append(email)
    for session in sorted(sessions, key=lambda x: x.id):
        await _rescore_one(db, session, existing_by[session.id], sorted(identities_by[session.id]), ctx)


async def _rescore_one(
    db: AsyncSession,
    session: UserSession,
    existing: dict[str, SessionCustomerMapping],
    identities: list[str],
    ctx: _Context,
) -> None:
    manual_links = {e for e, r in existing.items() if r.manual_decision == "link"}
    unlinked = {e for e, r in existing.items() if r.manual_decision == "unlink"}

    desired: dict[str, tuple[float, str, list[dict[str, object]]]] = {}
    if not automation.listable(session.automated):
        pass  # automated traffic is never a customer's: every automatic link goes
    elif not automation.carries_evidence(session.automated, session.human_interaction):
        # No person has acted yet: only the site's own sign-in links it (its identity is not recorded,
        # so it gives no evidence either); a later batch with an interaction is scored as any other.
        named = identities or ([session.customer_email] if session.customer_email else [])
        if not manual_links:
            for email in named:
                if email not in unlinked:
                    desired[email] = (1.0, "email_match", _email_match_evidence())
    elif not manual_links:
        if identities:
            for email in identities:
                if email not in unlinked:
                    desired[email] = (1.0, "email_match", _email_match_evidence())
        else:
            facts = await session_facts(db, session, ctx)
            for email, scored in scoring.score(gather(facts, exclude=unlinked)).items():
                if scored.confidence >= scoring.STORE_FLOOR:
                    desired[email] = (scored.confidence, scored.method, scored.evidence)

    for email, old in existing.items():
        if old.manual_decision is None and email not in desired:
            await db.delete(old)
    for email, (confidence, method, evidence) in desired.items():
        row = existing.get(email)
        if row is None:
            db.add(
                SessionCustomerMapping(
                    session_id=session.id,
                    customer_email=email,
                    confidence_score=confidence,
                    mapping_method=method,
                    evidence=evidence,
                )
            )
        elif (row.confidence_score, row.mapping_method, row.evidence) != (confidence, method, evidence):
            row.confidence_score = confidence
            row.mapping_method = method
            row.evidence = evidence


# ---- the ingest hook ---------------------------------------------------------------------------------


async def on_ingest(
    db: AsyncSession,
    *,
    session: UserSession,
    identified: CustomerRef | None,
    client_ip: str | None,
) -> None:
    """Record what a stored batch says about who the session belongs to and re-score what it affects.

    The mapping worker calls it, one job at a time, after the batch's own transaction committed
    (supportlens.tasks.mapping); it runs inside the caller's transaction and does not commit.
    `client_ip`: the address the batch came from (the session's latest when the batch had none).
    """
    ip = client_ip or session.client_ip
    key = ip_key(ip)
    device = session.clarity_user_id
    ctx = _Context()
    if session.automated is None:
        await _flag_if_too_many(db, ctx, session, ip)
    if not automation.carries_evidence(session.automated, session.human_interaction):
        await _forget_evidence_of(db, ctx, [session])
        await rescore_sessions(db, [session], ctx, identities={session.id: []})
        return
    scan_device = False
    ip_changed = False
    new_identity = False
    # Ranges of session_start of the anonymous sessions at this IP whose "minutes apart" gap may change.
    windows: list[tuple[datetime, datetime]] = []
    reach = timedelta(minutes=NEAR_WINDOW_MINUTES)

    def around(start: datetime, end: datetime) -> tuple[datetime, datetime]:
        # every session that can come within `reach` of [start, end], given its own bounded length
        return (start - reach - timedelta(hours=MAX_SESSION_HOURS), end + reach)

    identities = {
        row.customer_email: row
        for row in (
            await db.scalars(select(MappingIdentity).where(MappingIdentity.session_id == session.id))
        ).all()
    }
    email = normalise_email(identified.email) if identified is not None and identified.email else None
    if email is not None and email not in identities:
        db.add(
            MappingIdentity(
                session_id=session.id,
                customer_email=email,
                clarity_user_id=device,
                ip_key=key,
                session_start=session.session_start,
                session_end=session.session_end,
            )
        )
        scan_device = new_identity = True
        windows.append(around(session.session_start, session.session_end))
    for row in identities.values():
        if row.clarity_user_id != device or row.session_start != session.session_start:
            scan_device = True
        if (row.ip_key, row.session_start, row.session_end) != (
            key,
            session.session_start,
            session.session_end,
        ):
            if row.session_start != session.session_start or row.ip_key != key:
                windows.append(around(session.session_start, session.session_end))
            else:
                # Only the end moved on: the gap changes only for sessions that start after the old end
                # (one that starts earlier overlaps, or ends before, either way), and only up to `reach`.
                windows.append((min(row.session_end, session.session_end), session.session_end + reach))
            row.clarity_user_id = device
            row.ip_key = key
            row.session_start = session.session_start
            row.session_end = session.session_end

    new_network = False
    if key is not None and ip is not None:
        new_network = await _add_to_counter(db, ctx, key, device=device, email=None)
        ip_changed |= new_network
        if new_identity:
            ip_changed |= await _add_to_counter(db, ctx, key, device=None, email=email)
    # A browser or an address that just passed its session cap loses its evidence: what it touched is
    # re-scored, once. From then on its history is neither read nor re-scored.
    crossed, ip_crossed = await _note_if_busy(db, ctx, device, key, ip)
    device_busy = await _browser_busy(db, ctx, device)
    affected: set[uuid.UUID] = set()
    # Browsers all of whose sessions are re-scored: their own sign-ins, or the networks they visit, changed.
    browsers: set[str] = {device} if scan_device else set()
    if ip is not None and key is not None:
        counts = await _ip_counts(db, ctx, key)
        crowded = _crowded(counts)
        # This batch took the address past a cap: it stops carrying evidence for all its sessions.
        at_cap = counts.customers == MAX_IP_CUSTOMERS + 1 or counts.devices == MAX_IP_DEVICES + 1
        became_crowded = ip_crossed or (ip_changed and at_cap and not counts.busy)
        at_ip = select(UserSession.id, UserSession.clarity_user_id, UserSession.session_start).where(
            UserSession.client_ip == ip
        )
        everything = became_crowded or (ip_changed and not crowded) or (new_identity and not crowded)
        touched: list[Any] = []
        if everything:
            # The people count of a small address changed, a customer signed in behind it, or it just
            # became crowded: the IP evidence of all its sessions changed.
            touched.extend((await db.execute(at_ip)).all())
        elif windows and not crowded:
            for low, high in windows:
                touched.extend(
                    (
                        await db.execute(
                            at_ip.where(UserSession.session_start >= low, UserSession.session_start <= high)
                        )
                    ).all()
                )
        affected.update(row.id for row in touched)
        # The browser evidence of the browsers that visit this address. Their "other network" evidence
        # uses it only while few browsers do, so a busy address (an office, a carrier's NAT) changes
        # it only when it fills up; their "minutes from a sign-in" evidence changes only for visits
        # within reach of the sign-in that moved.
        quiet = counts.devices <= rules.BROWSER_MAX_IP_DEVICES
        filled_up = new_network and counts.devices == rules.BROWSER_MAX_IP_DEVICES + 1
        if everything and (became_crowded or (new_identity and quiet) or filled_up):
            browsers.update(row.clarity_user_id for row in touched)
        elif not crowded:
            browsers.update(
                row.clarity_user_id
                for row in touched
                if any(low <= row.session_start <= high for low, high in windows)
            )
        if (
            not crowded
            and not device_busy
            and ((new_network and quiet) or await _near_a_sign_in(db, ctx, key, session))
        ):
            # This visit adds a network to this browser's list, or may have come closer to a sign-in:
            # the browser evidence of this browser's other sessions changed.
            browsers.add(device)
    if scan_device or new_identity or windows:
        # The sightings were read before this batch's changes were flushed: read them again.
        ctx.forget_facts()
    # A busy browser has no device or browser evidence to change; its sessions at this address,
    # whose network evidence may have, are among `affected` already.
    browsers -= await _busy_browsers(db, ctx, browsers)
    if crossed:
        browsers.add(device)
    if browsers:
        affected.update(
            (
                await db.scalars(
                    select(UserSession.id).where(UserSession.clarity_user_id.in_(sorted(browsers)))
                )
            ).all()
        )
    affected.discard(session.id)
    known = set(identities) | ({email} if email is not None else set())
    await rescore_sessions(db, [session], ctx, identities={session.id: sorted(known)})
    if affected:
        await rescore_many(db, affected, ctx)


async def _near_a_sign_in(db: AsyncSession, ctx: _Context, key: str, session: UserSession) -> bool:
    """Whether another browser's sign-in behind this address is within minutes of this session.

    A session only grows, so when none is near now, none was near before this batch either.
    """
    near = (await _ip_sightings(db, ctx, key)).within(
        session.session_start, session.session_end, NEAR_WINDOW_MINUTES
    )
    return any(s.session_id != session.id for s in near)


# ---- automated traffic ---------------------------------------------------------------------------


async def _flag_if_too_many(db: AsyncSession, ctx: _Context, session: UserSession, ip: str | None) -> None:
    """The rate rule: more new sessions in a minute from one browser, or from one address, than people make.

    One browser: every session of it in that minute (and the next) is flagged `rate`. One address: only
    anonymous sessions of browsers seen nowhere else count and are flagged, since a carrier's or an
    office's address is shared by many people, but a person keeps their browser (its cookie) and a loop
    of scripted requests does not. Flagged sessions lose their links and stop giving evidence."""
    low, high = session.session_start - automation.RATE_WINDOW, session.session_start
    s = UserSession
    one_off = ~(
        select(literal(1))
        .select_from(UserSession.__table__.alias("other"))
        .where(text("other.clarity_user_id = user_sessions.clarity_user_id AND other.id <> user_sessions.id"))
        .exists()
    )
    rules_: list[Any] = [s.clarity_user_id == session.clarity_user_id]
    if ip is not None and session.customer_email is None:
        rules_.append(and_(s.client_ip == ip, s.customer_email.is_(None), one_off))
    flagged: list[UserSession] = []
    for rule in rules_:
        in_minute = select(s.id).where(rule, s.session_start >= low, s.session_start <= high)
        count = await db.scalar(
            select(func.count()).select_from(in_minute.limit(automation.RATE_LIMIT + 1).subquery())
        )
        if (count or 0) <= automation.RATE_LIMIT:
            continue
        # The burst's later sessions already stored are flagged too; those stored later see it themselves.
        marked = await db.scalars(
            update(UserSession)
            .where(
                rule,
                s.session_start >= low,
                s.session_start <= high + automation.RATE_WINDOW,
                s.automated.is_(None),
            )
            .values(automated="rate")
            .returning(UserSession)
            .execution_options(populate_existing=True, synchronize_session=False)
        )
        flagged.extend(marked.all())
    if any(f.id == session.id for f in flagged):
        session.automated = "rate"
    others = [f for f in flagged if f.id != session.id]
    if others:
        await _forget_evidence_of(db, ctx, others)
        await rescore_sessions(db, others, ctx, identities={f.id: [] for f in others})


async def _forget_evidence_of(db: AsyncSession, ctx: _Context, sessions: list[UserSession]) -> None:
    """Sessions that no longer carry evidence: their recorded sign-ins go, and the sessions whose
    evidence those sign-ins gave (the same browser's, the same address's) are re-scored."""
    ids = [s.id for s in sessions]
    removed = (
        await db.execute(
            delete(MappingIdentity)
            .where(MappingIdentity.session_id.in_(ids))
            .returning(MappingIdentity.clarity_user_id, MappingIdentity.ip_key)
        )
    ).all()
    if not removed:
        return
    ctx.forget_facts()
    devices = sorted({device for device, _ in removed})
    addresses = sorted({s.client_ip for s in sessions if s.client_ip and ip_key(s.client_ip)})
    neighbours = select(UserSession.id).where(
        UserSession.id.not_in(ids),
        UserSession.clarity_user_id.in_(devices) | UserSession.client_ip.in_(addresses),
    )
    await rescore_many(db, set((await db.scalars(neighbours)).all()), ctx)


# ---- manual decisions ----------------------------------------------------------------------------


class NotUndecided(LookupError):
    """A confirm or dismiss found no automatic link of the pair (`decided`: an agent already decided)."""

    def __init__(self, *, decided: bool) -> None:
        super().__init__("already decided" if decided else "no automatic link")
        self.decided = decided


async def set_manual(
    db: AsyncSession,
    *,
    session: UserSession,
    email: str,
    decision: str,
    agent: Any,
    reason: str | None,
    possible: bool = False,
) -> SessionCustomerMapping:
    """An agent links ("link") or unlinks ("unlink") a session and a customer. Does not commit.

    `possible`: the agent confirms ("link") or dismisses ("unlink") a link the engine scored and nobody
    decided on yet; NotUndecided when there is none (checked under the mutex, so a re-score or another
    agent's decision in between is seen)."""
    if decision not in ("link", "unlink"):
        raise ValueError("decision must be link or unlink")
    email = normalise_email(email)
    await mapping_mutex(db)
    ctx = _Context()
    row = await db.scalar(
        select(SessionCustomerMapping).where(
            SessionCustomerMapping.session_id == session.id, SessionCustomerMapping.customer_email == email
        )
    )
    if possible and (row is None or row.manual_decision is not None):
        raise NotUndecided(decided=row is not None)
    who = getattr(agent, "name", "") or getattr(agent, "email", "") or "an agent"
    day = utcnow()
    if possible:
        verb = "confirmed" if decision == "link" else "dismissed"
    else:
        verb = "linked" if decision == "link" else "unlinked"
    text = f"{verb} by {who} on {day.day} {day.strftime('%b')}"
    if reason:
        text += f": {reason.strip()[:500]}"
    manual_item: dict[str, object] = {
        "method": "manual",
        "score": 1.0 if decision == "link" else 0.0,
        "reason": text,
    }
    earlier = [e for e in (row.evidence if row is not None else []) if e.get("method") != "manual"]
    if row is None:
        row = SessionCustomerMapping(session_id=session.id, customer_email=email)
        db.add(row)
    elif row.manual_decision is None:
        # The engine's own result, kept so that this decision labels it. A later decision on the same
        # pair keeps the first one's: it is the engine's prediction that is being judged.
        row.auto_method = row.mapping_method
        row.auto_confidence = row.confidence_score
    row.decided_at = day
    row.confidence_score = 1.0 if decision == "link" else 0.0
    row.mapping_method = "manual"
    row.evidence = [manual_item, *earlier]
    row.manual_decision = decision
    row.decided_by_agent_id = getattr(agent, "id", None)
    row.reason = reason.strip()[:500] if reason else None
    await db.flush()
    await rescore(db, session, ctx)
    await db.flush()
    return row


async def forget_customer(db: AsyncSession, email: str) -> None:
    """Erasure helper: remove the customer's identity sightings (links are removed with the sessions)."""
    email = normalise_email(email)
    await mapping_mutex(db)
    # Mapping jobs not yet run (or failed) carry the e-mail in their arguments; one running now finds
    # the erased sessions gone, and its job is deleted when it ends.
    await db.execute(
        text(
            "DELETE FROM procrastinate_jobs WHERE task_name = :task AND args->>'email' = :email "
            "AND status <> 'doing'"
        ),
        {"task": "supportlens.map_session", "email": email},
    )
    await db.execute(delete(MappingIdentity).where(MappingIdentity.customer_email == email))
    await db.execute(delete(SessionCustomerMapping).where(SessionCustomerMapping.customer_email == email))
