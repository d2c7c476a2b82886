"""Erasure of one customer (GDPR art. 17): everything SupportLens holds about them, with a receipt.

Deleted: the sessions identified as the customer (the site named them) and the sessions the mapping
links to them (at or above the confidence agents are shown, or linked by hand), with their events and
notes and the links to the HubSpot notes agents made from them (the notes are HubSpot's records); every
mapping link naming their e-mail (a link below the threshold goes, the session stays: it
is not theirs); the mapping engine's facts about them and their browsers; search-history entries
mentioning the e-mail, or their phone numbers and HubSpot/Dwolla ids (read from those systems first);
and cached upstream answers. Agents' text that stays (a note or link reason on someone else's session)
has the e-mail redacted. The audit log keeps one entry naming the customer by a keyed hash only
(audit.customer_ref), so the append-only log never has to change; the receipt, with the ids for the
manual steps, is returned once and not stored.

Other domains that store customer data register an eraser in ERASERS:
`async def erase(db, email, settings) -> dict[str, int]` (counts by kind), called inside the same
transaction.
"""

from __future__ import annotations

import asyncio
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
from supportlens.customers.emails import InvalidEmail, canonical_email, canonical_email_or_none
from supportlens.mapping.models import MappingBusyBrowser, MappingIpDevice
from supportlens.search.models import SearchHistory
from supportlens.sessions.models import SessionAnnotation, SessionCustomerMapping, SessionEvent, UserSession

Eraser = Callable[[AsyncSession, str, Settings], Awaitable[dict[str, int]]]
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
    note: str = ""


@dataclass
class DirectoryFacts:
    """What HubSpot and Dwolla hold about the customer, read (never changed) just before erasure: their
    ids there, for the manual steps, and their phone numbers, which agents' search history may hold."""

    hubspot_ids: list[str] = field(default_factory=list)
    dwolla_ids: list[str] = field(default_factory=list)
    phones: list[str] = field(default_factory=list)  # E.164, as search history keys phone searches
    unreachable: list[str] = field(default_factory=list)  # "HubSpot", "Dwolla": did not answer


async def directory_facts(directory: Any, email: str) -> DirectoryFacts:
    """Look the customer up by e-mail in HubSpot and Dwolla (`directory` is the search service, whose
    deadlines, retries and rate limits apply); only records with exactly this e-mail, or the Dwolla
    customer HubSpot names for such a contact, count."""
    from supportlens.customers.query import SearchQuery, parse_query
    from supportlens.integrations.dwolla.models import DwollaCustomerDetail
    from supportlens.integrations.hubspot.models import HubSpotContactBundle

    query = SearchQuery(raw=email, text=email, kind="email", email=email)
    hubspot, dwolla = await asyncio.gather(
        directory.source("hubspot", query, refresh=True), directory.source("dwolla", query, refresh=True)
    )
    facts = DirectoryFacts()
    linked_dwolla: set[str] = set()
    if hubspot.status == "ok":
        for item in hubspot.items:
            bundle = HubSpotContactBundle.model_validate(item)
            if canonical_email_or_none(bundle.contact.email) != email:
                continue
            facts.hubspot_ids.append(bundle.contact.id)
            if bundle.dwolla_id:
                linked_dwolla.add(bundle.dwolla_id)
            for phone in (bundle.contact.phone, bundle.contact.mobile_phone):
                e164 = parse_query(phone).phone_e164 if phone else None
                if e164:
                    facts.phones.append(e164)
    else:
        facts.unreachable.append("HubSpot")
    if dwolla.status == "ok":
        for item in dwolla.items:
            customer = DwollaCustomerDetail.model_validate(item).customer
            if canonical_email_or_none(customer.email) == email or customer.id in linked_dwolla:
                facts.dwolla_ids.append(customer.id)
    else:
        facts.unreachable.append("Dwolla")
    facts.hubspot_ids, facts.dwolla_ids = sorted(set(facts.hubspot_ids)), sorted(set(facts.dwolla_ids))
    facts.phones = sorted(set(facts.phones))
    return facts


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
                {
                    "system": s.system,
                    "what": s.what,
                    "how": s.how,
                    "link": s.link,
                    "ids": s.ids,
                    "note": s.note,
                }
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
        from supportlens.customers import cache
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
    directory: Any = None,
) -> ErasureReceipt:
    """Delete everything held about the customer in one transaction; audit it without PII.

    `directory` (the customer directory) is asked first, before anything is deleted, for the customer's
    HubSpot and Dwolla ids and phone numbers: the receipt names the ids, and searches by those phones or
    ids go from search history with the searches by e-mail."""
    email = normalize(email)
    ref = audit.customer_ref(email, settings)
    facts = await directory_facts(directory, email) if directory is not None else None
    counts: dict[str, int] = {}
    ids = await _customer_session_ids(db, email, settings.mapping_min_confidence)

    clarity_users, browsers = await _clarity_users(db, ids)

    from supportlens.crmnotes.service import erase as erase_note_links

    # Before the sessions: the links of her sessions and any naming her (the notes are HubSpot's).
    counts["hubspot_note_links"] = await erase_note_links(db, email, ids, settings)
    counts.update(await _erase_sessions(db, email, ids))
    counts["search_history"] = await _erase_searches(db, email, facts)
    counts.update(await _erase_browsers(db, browsers))
    counts.update(await _redact_mentions(db, email))
    for eraser in ERASERS:
        for key, value in (await eraser(db, email, settings)).items():
            counts[key] = counts.get(key, 0) + int(value)

    cache_cleared = await _clear_search_cache()
    steps = manual_steps(clarity_users, facts)
    detail: dict[str, Any] = {
        "deleted": counts,
        "cache_cleared": cache_cleared,
        "clarity_users": len(clarity_users),
    }
    if facts is not None:
        detail["directory_unreachable"] = facts.unreachable
    await audit.record(
        db,
        "customer_erased",
        request=request,
        actor=actor,
        target_type="customer",
        target=ref,
        detail=detail,
    )  # commits the deletions and the audit entry together
    return ErasureReceipt(ref, counts, steps, cache_cleared)


async def _clarity_users(db: AsyncSession, ids: list[Any]) -> tuple[list[str], list[str]]:
    """The sessions' Clarity users ("project/user", for the Clarity console) and browser ids; read
    before the sessions go."""
    clarity_rows: list[Any] = []
    for chunk in _chunks(ids):
        query = select(UserSession.clarity_project_id, UserSession.clarity_user_id).where(
            UserSession.id.in_(chunk)
        )
        clarity_rows += (await db.execute(query)).all()
    clarity_users = sorted({f"{p}/{u}" if p else u for p, u in clarity_rows if u})
    browsers = sorted({u for _, u in clarity_rows if u})
    return clarity_users, browsers


async def _erase_sessions(db: AsyncSession, email: str, ids: list[Any]) -> dict[str, int]:
    """Her sessions with their events, notes and links; and every link naming her e-mail."""
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
    return {"sessions": sessions, "events": events, "annotations": annotations, "mapping_links": links}


async def _erase_searches(db: AsyncSession, email: str, facts: Any) -> int:
    """Agents' searches for her: by e-mail, and by her phone numbers or HubSpot/Dwolla ids."""
    # Searches by her phone numbers or her HubSpot/Dwolla ids are keyed by the E.164 number or the
    # case-folded text: matched exactly, so a short numeric id never takes someone else's search.
    other_keys = (
        [k.casefold() for k in (facts.phones + facts.hubspot_ids + facts.dwolla_ids)] if facts else []
    )
    return await _deleted(
        db,
        delete(SearchHistory).where(
            or_(
                func.lower(SearchHistory.query).contains(email, autoescape=True),
                func.lower(SearchHistory.normalized_query).contains(email, autoescape=True),
                SearchHistory.normalized_query.in_(other_keys),
            )
        ),
    )


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


async def _erase_mapping_facts(db: AsyncSession, email: str, settings: Settings) -> dict[str, int]:
    """The mapping engine's own facts about the customer: identified sessions and the (keyed) count of
    customers seen behind an address."""
    try:
        from supportlens.mapping.facts import FactKeys
        from supportlens.mapping.models import MappingIdentity, MappingIpCustomer
    except ImportError:  # pragma: no cover - the mapping engine is part of the app
        return {}
    identities = await _deleted(
        db, delete(MappingIdentity).where(func.lower(MappingIdentity.customer_email) == email)
    )
    ip_links = await _deleted(
        db,
        delete(MappingIpCustomer).where(
            MappingIpCustomer.customer_key == FactKeys.of(settings).customer(email)
        ),
    )
    return {"mapping_identities": identities, "mapping_ip_links": ip_links}


ERASERS.append(_erase_mapping_facts)


async def _erase_attention(db: AsyncSession, email: str, _settings: Settings) -> dict[str, int]:
    from supportlens.attention.service import erase_customer

    return await erase_customer(db, email)


ERASERS.append(_erase_attention)


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


def manual_steps(clarity_users: list[str], facts: DirectoryFacts | None = None) -> list[ManualStep]:
    facts = facts or DirectoryFacts(unreachable=["HubSpot", "Dwolla"])

    def note(system: str, ids: list[str]) -> str:
        if system in facts.unreachable:
            return f"{system} could not be asked during erasure: find the customer there by the e-mail."
        return "" if ids else f"{system} has no record with this e-mail."

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
            "The CRM contact and its history, including the session notes agents added to it and its "
            "tickets from SupportLens (SupportLens erased its own links to them).",
            "Open the contact in HubSpot, Actions → Delete → “Permanently delete this contact” "
            "(GDPR delete), "
            "which also blocks the e-mail from being re-imported.",
            MANUAL_HELP["hubspot"],
            facts.hubspot_ids,
            note("HubSpot", facts.hubspot_ids),
        ),
        ManualStep(
            "Dwolla",
            "The payments customer.",
            "Deactivate the customer in the Dwolla dashboard (or set its status to deactivated). Transfer "
            "records are kept by Dwolla and by you as payment law requires; they are not erased.",
            MANUAL_HELP["dwolla"],
            facts.dwolla_ids,
            note("Dwolla", facts.dwolla_ids),
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
