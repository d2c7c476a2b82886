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

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, literal, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.mapping import evidence as rules
from supportlens.mapping import scoring
from supportlens.mapping.evidence import (
    MAX_IP_CUSTOMERS,
    MAX_IP_DEVICES,
    NEAR_WINDOW_MINUTES,
    gather,
)
from supportlens.mapping.facts import (
    FactKeys,
    RescoreContext,
    add_to_counter,
    browser_busy,
    busy_browsers,
    ip_counts,
    ip_sightings,
    is_crowded,
    normalise_email,
    note_if_busy,
    session_facts,
)
from supportlens.mapping.models import (
    MappingIdentity,
)
from supportlens.sessions import automation
from supportlens.sessions.models import SessionCustomerMapping, UserSession

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


async def mapping_mutex(db: AsyncSession) -> None:
    """Hold the mapping mutex until the end of this transaction (a PostgreSQL advisory lock).

    Links are written by one mapping job at a time (the queue's lock, see supportlens.tasks) and by an
    agent's manual decision or an erasure: this mutex keeps those from interleaving with a job, so a
    job never scores from, or overwrites, a view that another writer changed under it.
    """
    await db.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": MAPPING_MUTEX})


# ---- re-scoring ------------------------------------------------------------------------------------


def _email_match_evidence() -> list[dict[str, object]]:
    return [{"method": "email_match", "score": 1.0, "reason": EMAIL_MATCH_REASON}]


async def rescore(db: AsyncSession, session: UserSession, ctx: RescoreContext) -> None:
    """Recompute every automatic link of one session from the stored facts; manual decisions stay."""
    await rescore_sessions(db, [session], ctx)


async def rescore_many(db: AsyncSession, ids: set[uuid.UUID], ctx: RescoreContext) -> None:
    """Re-score the anonymous ones among `ids`.

    A session the site named a customer on links by that name alone (email_match), whatever its browser
    and network say, so the neighbours' facts cannot move it: on a browser that usually signs in,
    skipping them is most of a sign-in's fan-out. Whether a session is signed in is read again under
    the same transaction as the re-score.
    """
    ordered = sorted(ids)
    signed_in = select(MappingIdentity.session_id).where(MappingIdentity.session_id == UserSession.id)
    for offset in range(0, len(ordered), 500):
        chunk = ordered[offset : offset + 500]
        anonymous = select(UserSession).where(UserSession.id.in_(chunk), ~signed_in.exists())
        sessions = list((await db.scalars(anonymous)).all())
        await busy_browsers(db, ctx, {s.clarity_user_id for s in sessions})  # one query, not one each
        await rescore_sessions(db, sessions, ctx)


async def rescore_sessions(
    db: AsyncSession,
    sessions: list[UserSession],
    ctx: RescoreContext,
    *,
    identities: dict[uuid.UUID, list[str]] | None = None,
) -> None:
    """`identities`: each session's signed-in e-mails when the caller already holds them."""
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
    ctx: RescoreContext,
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
    keys: FactKeys,
) -> None:
    """Record what a stored batch says about who the session belongs to and re-score what it affects.

    The mapping worker calls it, one job at a time, after the batch's own transaction committed
    (supportlens.tasks.mapping); it runs inside the caller's transaction and does not commit.
    `client_ip`: the address the batch came from (the session's latest when the batch had none).
    `keys`: the keyed hashes of addresses and customers, on the caller's settings (`FactKeys.of`).
    """
    ip = client_ip or session.client_ip
    key = keys.ip(ip)
    device = session.clarity_user_id
    ctx = RescoreContext(keys)
    if session.automated is None:
        await _flag_if_too_many(db, ctx, session, ip)
    if not automation.carries_evidence(session.automated, session.human_interaction):
        await _forget_evidence_of(db, ctx, [session])
        await rescore_sessions(db, [session], ctx, identities={session.id: []})
        return
    identities, email, scan_device, new_identity, windows = await _record_identity(
        db, session, identified, key
    )
    new_network = ip_changed = False
    if key is not None and ip is not None:
        new_network = await add_to_counter(db, ctx, key, device=device, email=None)
        ip_changed |= new_network
        if new_identity:
            ip_changed |= await add_to_counter(db, ctx, key, device=None, email=email)
    # A browser or an address that just passed its session cap loses its evidence: what it touched is
    # re-scored, once. From then on its history is neither read nor re-scored.
    crossed, ip_crossed = await note_if_busy(db, ctx, device, key, ip)
    device_busy = await browser_busy(db, ctx, device)
    affected: set[uuid.UUID] = set()
    # Browsers all of whose sessions are re-scored: their own sign-ins, or the networks they visit, changed.
    browsers: set[str] = {device} if scan_device else set()
    if ip is not None and key is not None:
        at_ip, behind_ip = await _network_changes(
            db,
            ctx,
            session,
            ip,
            key,
            windows,
            new_identity=new_identity,
            new_network=new_network,
            ip_changed=ip_changed,
            ip_crossed=ip_crossed,
            device_busy=device_busy,
        )
        affected |= at_ip
        browsers |= behind_ip
    if scan_device or new_identity or windows:
        # The sightings were read before this batch's changes were flushed: read them again.
        ctx.forget_facts()
    # A busy browser has no device or browser evidence to change; its sessions at this address,
    # whose network evidence may have, are among `affected` already.
    browsers -= await busy_browsers(db, ctx, browsers)
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
    if not known and device not in browsers:
        affected |= await _sessions_if_unsigned_moved(db, ctx, device) - {session.id}
    if affected:
        await rescore_many(db, affected, ctx)


async def _sessions_if_unsigned_moved(db: AsyncSession, ctx: RescoreContext, device: str) -> set[uuid.UUID]:
    """The browser's sessions when its count of sessions may just have moved the scorer's view of it
    (`scoring.unsigned_moves`: a few counts in a browser's life, none for one mostly signed in); else
    none. Each batch at such a count re-scores it (a batch does not say whether its session is new): at
    most 256 sessions (the busy cap is 500), behind the browser's few addresses, read once per batch."""
    visits, signed_in = ctx.visits.get(device), ctx.device.get(device)
    if visits is None or signed_in is None or not scoring.unsigned_moves(len(visits.visits), len(signed_in)):
        return set()
    return set((await db.scalars(select(UserSession.id).where(UserSession.clarity_user_id == device))).all())


def _around(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """Every session start that can come within reach of [start, end], given its own bounded length."""
    reach = timedelta(minutes=NEAR_WINDOW_MINUTES)
    return (start - reach - timedelta(hours=MAX_SESSION_HOURS), end + reach)


async def _record_identity(
    db: AsyncSession, session: UserSession, identified: CustomerRef | None, key: str | None
) -> tuple[dict[str, MappingIdentity], str | None, bool, bool, list[tuple[datetime, datetime]]]:
    """Store the batch's sign-in and move the session's sign-ins to where and when it is now.

    Returns the sign-ins as they were, the batch's e-mail, whether the browser's sessions must all be
    re-scored, whether the sign-in is new, and the ranges of session_start of the anonymous sessions at
    this address whose "minutes apart" gap may change."""
    device = session.clarity_user_id
    scan_device = new_identity = False
    windows: list[tuple[datetime, datetime]] = []
    reach = timedelta(minutes=NEAR_WINDOW_MINUTES)
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
        windows.append(_around(session.session_start, session.session_end))
    for row in identities.values():
        if row.clarity_user_id != device or row.session_start != session.session_start:
            scan_device = True
        if (row.ip_key, row.session_start, row.session_end) != (
            key,
            session.session_start,
            session.session_end,
        ):
            if row.session_start != session.session_start or row.ip_key != key:
                windows.append(_around(session.session_start, session.session_end))
            else:
                # Only the end moved on: the gap changes only for sessions that start after the old end
                # (one that starts earlier overlaps, or ends before, either way), and only up to `reach`.
                windows.append((min(row.session_end, session.session_end), session.session_end + reach))
            row.clarity_user_id = device
            row.ip_key = key
            row.session_start = session.session_start
            row.session_end = session.session_end
    return identities, email, scan_device, new_identity, windows


async def _network_changes(
    db: AsyncSession,
    ctx: RescoreContext,
    session: UserSession,
    ip: str,
    key: str,
    windows: list[tuple[datetime, datetime]],
    *,
    new_identity: bool,
    new_network: bool,
    ip_changed: bool,
    ip_crossed: bool,
    device_busy: bool,
) -> tuple[set[uuid.UUID], set[str]]:
    """What this batch changed behind its address: the sessions there whose network evidence changed,
    and the browsers all of whose sessions' browser evidence did."""
    device = session.clarity_user_id
    browsers: set[str] = set()
    counts = await ip_counts(db, ctx, key)
    crowded = is_crowded(counts)
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
    affected = {row.id for row in touched}
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
    return affected, browsers


async def _near_a_sign_in(db: AsyncSession, ctx: RescoreContext, key: str, session: UserSession) -> bool:
    """Whether another browser's sign-in behind this address is within minutes of this session.

    A session only grows, so when none is near now, none was near before this batch either.
    """
    near = (await ip_sightings(db, ctx, key)).within(
        session.session_start, session.session_end, NEAR_WINDOW_MINUTES
    )
    return any(s.session_id != session.id for s in near)


# ---- automated traffic ---------------------------------------------------------------------------


async def _flag_if_too_many(
    db: AsyncSession, ctx: RescoreContext, session: UserSession, ip: str | None
) -> None:
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


async def _forget_evidence_of(db: AsyncSession, ctx: RescoreContext, sessions: list[UserSession]) -> None:
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
    addresses = sorted({s.client_ip for s in sessions if s.client_ip and ctx.keys.ip(s.client_ip)})
    neighbours = select(UserSession.id).where(
        UserSession.id.not_in(ids),
        UserSession.clarity_user_id.in_(devices) | UserSession.client_ip.in_(addresses),
    )
    await rescore_many(db, set((await db.scalars(neighbours)).all()), ctx)
