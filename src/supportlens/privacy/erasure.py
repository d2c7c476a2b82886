"""Erasure of one customer (GDPR art. 17): everything SupportLens holds about them, with a receipt.

Deleted: the sessions identified as the customer (the site named them) and the sessions the mapping
links to them (at or above the confidence agents are shown, or linked by hand), with their events and
notes; every mapping link naming their e-mail (a link below the threshold goes, the session stays: it
is not theirs); search-history entries mentioning the e-mail; and cached upstream answers. The audit
log keeps one entry naming the customer by a keyed hash only (audit.customer_ref), so the append-only
log never has to change.

Other domains that store customer data register an eraser in ERASERS:
`async def erase(db, email) -> dict[str, int]` (counts by kind), called inside the same transaction.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.audit import service as audit
from supportlens.config import Settings
from supportlens.customers.emails import InvalidEmail, canonical_email
from supportlens.mapping.models import MappingBusyBrowser, MappingIpDevice, SessionCustomerMapping
from supportlens.search.models import SearchHistory
from supportlens.sessions.models import SessionAnnotation, SessionEvent, UserSession

Eraser = Callable[[AsyncSession, str], Awaitable[dict[str, int]]]
ERASERS: list[Eraser] = []

# Help pages for the steps that must be done by hand in the vendors' own consoles (no API call is made).
MANUAL_HELP = {
    "clarity": "https://learn.microsoft.com/en-us/clarity/setup-and-installation/clarity-data-deletion",
    "hubspot": "https://knowledge.hubspot.com/privacy-and-consent/how-do-i-perform-a-gdpr-delete-in-hubspot",
    "dwolla": "https://developers.dwolla.com/docs/api-reference/customers/update-a-customer",
}


class ErasureError(ValueError):
    pass


@dataclass
class ManualStep:
    system: str
    what: str
    how: str
    link: str
    ids: list[str] = field(default_factory=list)


@dataclass
class ErasureReceipt:
    customer_ref: str
    counts: dict[str, int]
    manual_steps: list[ManualStep]
    cache_cleared: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "customerRef": self.customer_ref,
            "deleted": self.counts,
            "cacheCleared": self.cache_cleared,
            "manualSteps": [
                {"system": s.system, "what": s.what, "how": s.how, "link": s.link, "ids": s.ids}
                for s in self.manual_steps
            ],
        }


def normalize(email: str) -> str:
    """The canonical e-mail, by the same rule ingest stores it with: whatever ingest accepted (even a
    form a strict validator refuses, such as `taro..yamada@docomo.ne.jp`) can be erased."""
    try:
        return canonical_email(email)
    except InvalidEmail as exc:
        raise ErasureError(str(exc)) from None


async def _customer_session_ids(db: AsyncSession, email: str, min_confidence: float) -> list[uuid.UUID]:
    identified = select(UserSession.id).where(func.lower(UserSession.customer_email) == email)
    # A session the site identified as someone else stays theirs, whatever a weaker link says.
    linked = (
        select(SessionCustomerMapping.session_id)
        .join(UserSession, UserSession.id == SessionCustomerMapping.session_id)
        .where(or_(UserSession.customer_email.is_(None), func.lower(UserSession.customer_email) == email))
        .where(
            func.lower(SessionCustomerMapping.customer_email) == email,
            or_(
                SessionCustomerMapping.manual_decision.is_(None),
                SessionCustomerMapping.manual_decision != "unlink",
            ),
            or_(
                SessionCustomerMapping.confidence_score >= min_confidence,
                SessionCustomerMapping.manual_decision == "link",
            ),
        )
    )
    ids = set((await db.scalars(identified)).all()) | set((await db.scalars(linked)).all())
    return sorted(ids, key=str)


async def _deleted(db: AsyncSession, stmt: Any) -> int:
    """Run a DELETE; the number of rows it removed."""
    result = await db.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)


def _chunks(ids: list[uuid.UUID], size: int = 500) -> list[list[uuid.UUID]]:
    return [ids[i : i + size] for i in range(0, len(ids), size)]


async def _clear_search_cache() -> bool:
    try:
        from supportlens.search import cache
    except ImportError:
        return False
    clear = getattr(cache, "clear", None)
    if clear is None:
        return False
    result = clear()
    if hasattr(result, "__await__"):
        await result
    return True


async def erase_customer(
    db: AsyncSession,
    email: str,
    settings: Settings,
    *,
    actor: Any = None,
    request: Any = None,
) -> ErasureReceipt:
    """Delete everything held about the customer in one transaction; audit it without PII."""
    email = normalize(email)
    ref = audit.customer_ref(email)
    counts: dict[str, int] = {}
    ids = await _customer_session_ids(db, email, settings.mapping_min_confidence)

    # Clarity ids must be read before the sessions go: they are what the Clarity console needs.
    clarity_rows: list[Any] = []
    for chunk in _chunks(ids):
        query = select(UserSession.clarity_project_id, UserSession.clarity_user_id).where(
            UserSession.id.in_(chunk)
        )
        clarity_rows += (await db.execute(query)).all()
    clarity_users = sorted({f"{p}/{u}" if p else u for p, u in clarity_rows if u})
    browsers = sorted({u for _, u in clarity_rows if u})

    events = annotations = links = sessions = 0
    for chunk in _chunks(ids):
        events += await _deleted(db, delete(SessionEvent).where(SessionEvent.session_id.in_(chunk)))
        annotations += await _deleted(
            db, delete(SessionAnnotation).where(SessionAnnotation.session_id.in_(chunk))
        )
        links += await _deleted(
            db, delete(SessionCustomerMapping).where(SessionCustomerMapping.session_id.in_(chunk))
        )
        sessions += await _deleted(db, delete(UserSession).where(UserSession.id.in_(chunk)))
    # Links to sessions that stay (below the threshold, or unlinked by an agent) still name the e-mail.
    links += await _deleted(
        db, delete(SessionCustomerMapping).where(func.lower(SessionCustomerMapping.customer_email) == email)
    )
    history = await _deleted(
        db,
        delete(SearchHistory).where(
            or_(
                func.lower(SearchHistory.query).contains(email, autoescape=True),
                func.lower(SearchHistory.normalized_query).contains(email, autoescape=True),
            )
        ),
    )
    counts.update(
        sessions=sessions, events=events, annotations=annotations, mapping_links=links, search_history=history
    )
    counts.update(await _erase_browsers(db, browsers))
    counts.update(await _redact_mentions(db, email))
    for eraser in ERASERS:
        for key, value in (await eraser(db, email)).items():
            counts[key] = counts.get(key, 0) + int(value)

    cache_cleared = await _clear_search_cache()
    steps = manual_steps(clarity_users)
    await audit.record(
        db,
        "customer_erased",
        request=request,
        actor=actor,
        target_type="customer",
        target=ref,
        detail={"deleted": counts, "cache_cleared": cache_cleared, "clarity_users": len(clarity_users)},
    )  # commits the deletions and the audit entry together
    return ErasureReceipt(ref, counts, steps, cache_cleared)


async def _redact_mentions(db: AsyncSession, email: str) -> dict[str, int]:
    """Agents' free text that stays (a note on someone else's session, the reason on another customer's
    link) but names this customer: the e-mail is replaced, the rest of the text is theirs to keep."""
    mention = re.compile(re.escape(email), re.IGNORECASE)

    def redact(value: str) -> str:
        return mention.sub("[erased]", unicodedata.normalize("NFC", value))

    notes = (
        await db.scalars(
            select(SessionAnnotation).where(
                func.lower(SessionAnnotation.note).contains(email, autoescape=True)
            )
        )
    ).all()
    for note in notes:
        note.note = redact(note.note)
    links = (
        await db.scalars(
            select(SessionCustomerMapping).where(
                func.lower(SessionCustomerMapping.reason).contains(email, autoescape=True)
            )
        )
    ).all()
    for link in links:
        link.reason = redact(link.reason or "")
        link.evidence = [{**e, "reason": redact(str(e.get("reason", "")))} for e in link.evidence]
    await db.flush()
    return {"notes_redacted": len(notes), "link_reasons_redacted": len(links)}


async def _erase_mapping_facts(db: AsyncSession, email: str) -> dict[str, int]:
    """The mapping engine's own facts about the customer: identified sessions and the (keyed) count of
    customers seen behind an address."""
    try:
        from supportlens.mapping.engine import customer_key
        from supportlens.mapping.models import MappingIdentity, MappingIpCustomer
    except ImportError:  # pragma: no cover - the mapping engine is part of the app
        return {}
    identities = await _deleted(
        db, delete(MappingIdentity).where(func.lower(MappingIdentity.customer_email) == email)
    )
    ip_links = await _deleted(
        db, delete(MappingIpCustomer).where(MappingIpCustomer.customer_key == customer_key(email))
    )
    return {"mapping_identities": identities, "mapping_ip_links": ip_links}


ERASERS.append(_erase_mapping_facts)


async def _erase_browsers(db: AsyncSession, browsers: list[str]) -> dict[str, int]:
    """The mapping engine's facts about the customer's browsers (Clarity user ids): which addresses each
    was seen behind, and whether it was marked busy. Counting starts afresh if the browser comes back."""
    devices = busy = 0
    for start in range(0, len(browsers), 500):
        chunk = browsers[start : start + 500]
        devices += await _deleted(
            db, delete(MappingIpDevice).where(MappingIpDevice.clarity_user_id.in_(chunk))
        )
        busy += await _deleted(
            db, delete(MappingBusyBrowser).where(MappingBusyBrowser.clarity_user_id.in_(chunk))
        )
    return {"mapping_ip_devices": devices, "mapping_busy_browsers": busy}


def manual_steps(clarity_users: list[str]) -> list[ManualStep]:
    return [
        ManualStep(
            "Microsoft Clarity",
            "Recordings and heatmap data of the customer's devices.",
            "In the Clarity project: Settings → Data management → delete user data, for each Clarity user id "
            "listed here (project/user). Clarity also deletes recordings after its own retention period.",
            MANUAL_HELP["clarity"],
            clarity_users,
        ),
        ManualStep(
            "HubSpot",
            "The CRM contact and its history.",
            "Open the contact in HubSpot, Actions → Delete → “Permanently delete this contact” "
            "(GDPR delete), "
            "which also blocks the e-mail from being re-imported.",
            MANUAL_HELP["hubspot"],
        ),
        ManualStep(
            "Dwolla",
            "The payments customer.",
            "Deactivate the customer in the Dwolla dashboard (or set its status to deactivated). Transfer "
            "records are kept by Dwolla and by you as payment law requires; they are not erased.",
            MANUAL_HELP["dwolla"],
        ),
    ]


async def preview(db: AsyncSession, email: str, settings: Settings) -> dict[str, int]:
    """What erase_customer would delete now (for the confirmation page); changes nothing."""
    email = normalize(email)
    ids = await _customer_session_ids(db, email, settings.mapping_min_confidence)
    events = 0
    for chunk in _chunks(ids):
        events += int(
            await db.scalar(
                select(func.count()).select_from(SessionEvent).where(SessionEvent.session_id.in_(chunk))
            )
            or 0
        )
    links = int(
        await db.scalar(
            select(func.count())
            .select_from(SessionCustomerMapping)
            .where(func.lower(SessionCustomerMapping.customer_email) == email)
        )
        or 0
    )
    history = int(
        await db.scalar(
            select(func.count())
            .select_from(SearchHistory)
            .where(func.lower(SearchHistory.query).contains(email, autoescape=True))
        )
        or 0
    )
    return {"sessions": len(ids), "events": events, "mapping_links": links, "search_history": history}
