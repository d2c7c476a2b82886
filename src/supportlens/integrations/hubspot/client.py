"""Async HubSpot CRM client: contacts search and a contact's companies, deals and tickets; notes on a
contact and its tickets (create, update, associate); the account's portal id for links into HubSpot."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

import httpx2
from pydantic import BaseModel, ValidationError

from supportlens.config import Settings
from supportlens.integrations.errors import (
    UpstreamBadResponse,
    UpstreamError,
    UpstreamForbidden,
    UpstreamNotFound,
)
from supportlens.integrations.http import VendorHTTP, VendorPolicy
from supportlens.integrations.hubspot.models import (
    COMPANY_PROPERTIES,
    CONTACT_PROPERTIES,
    DEAL_PROPERTIES,
    NOTE_PROPERTIES,
    NOTE_TO_CONTACT,
    NOTE_TO_TICKET,
    TICKET_PROPERTIES,
    BatchResponse,
    CrmObject,
    HubSpotAccount,
    HubSpotCompany,
    HubSpotContact,
    HubSpotContactBundle,
    HubSpotDeal,
    HubSpotNote,
    HubSpotTicket,
    OwnersPage,
    SearchResponse,
    V4AssociationsResponse,
    WireAccountDetails,
)
from supportlens.integrations.hubspot.notes import NoteContent
from supportlens.integrations.ratelimits import RateLimit

VENDOR = "hubspot"
SEARCH_BUCKET = "search"
GENERAL_BUCKET = "general"
OWNERS_TTL_SECONDS = 600.0  # owners change rarely: one list read per ten minutes
MAX_ASSOCIATED = 50  # per object type in one bundle (a batch read takes up to 100 inputs)
# A contact read by e-mail is used again for its bundle if that follows within this time.
RECENT_SECONDS = 10.0
RECENT_MAX = 256

M = TypeVar("M", bound=BaseModel)


def policy_from_settings(settings: Settings) -> VendorPolicy:
    return VendorPolicy(
        vendor=VENDOR,
        base_url=settings.hubspot_base_url,
        read_timeout=settings.upstream_read_timeout_seconds,
        limits={
            # Search endpoints: 5 requests per second per account (no rate-limit headers on search).
            SEARCH_BUCKET: RateLimit(settings.hubspot_search_per_second, 1.0),
            # Everything else: the private-app burst limit per 10 seconds.
            GENERAL_BUCKET: RateLimit(settings.hubspot_requests_per_10s, 10.0),
        },
        redis_url=settings.redis_url,
    )


def build_search_body(
    text: str, limit: int, *, email: str | None = None, phone_e164: str | None = None
) -> dict[str, Any]:
    """The CRM search request for what the agent typed (`text`), with its e-mail or E.164 number when it
    was one.

    E-mail: an exact `EQ` filter on `email`. Phone: `EQ` on `phone` or `mobilephone` in E.164 and
    in the national format people type, OR-ed as filter groups. Name and company: HubSpot's free-text
    `query` over the default searchable properties (first and last name, e-mail, phone, company).
    """
    body: dict[str, Any] = {
        "properties": CONTACT_PROPERTIES,
        "limit": max(1, min(limit, 100)),
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}],
    }
    if email:
        body["filterGroups"] = [{"filters": [{"propertyName": "email", "operator": "EQ", "value": email}]}]
    elif phone_e164:
        values = phone_variants(phone_e164, text)
        body["filterGroups"] = [
            {"filters": [{"propertyName": prop, "operator": "IN", "values": values}]}
            for prop in ("phone", "mobilephone")
        ]
    else:
        body["query"] = text
    return body


def phone_variants(e164: str, typed: str) -> list[str]:
    """The ways one number is commonly stored in a CRM text property."""
    import phonenumbers

    variants = [e164, typed.strip()]
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return list(dict.fromkeys(variants))
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    international = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    digits = "".join(c for c in national if c.isdigit())
    variants += [national, international, digits, international.replace(" ", "-")]
    if len(digits) == 10:
        variants.append(f"{digits[:3]}-{digits[3:6]}-{digits[6:]}")
        variants.append(f"{digits[:3]}.{digits[3:6]}.{digits[6:]}")
    return list(dict.fromkeys(v for v in variants if v))[:10]


def _parse(model: type[M], payload: Any, what: str) -> M:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise UpstreamBadResponse(VENDOR, f"unexpected shape of the {what} answer") from exc


class HubSpotClient:
    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
        policy: VendorPolicy | None = None,
    ) -> None:
        self.http = VendorHTTP(policy or policy_from_settings(settings), transport=transport)
        self._token = settings.hubspot_token
        self._owners: dict[str, str] = {}
        self._owners_at = -OWNERS_TTL_SECONDS
        self._owners_lock = asyncio.Lock()
        self._recent: dict[str, tuple[float, CrmObject]] = {}
        self._account: HubSpotAccount | None = None

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _headers(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self._token.get_secret_value()}", "Accept": "application/json"}

    async def _call(self, method: str, path: str, bucket: str, **kwargs: Any) -> Any:
        return await self.http.request(method, path, bucket=bucket, headers_factory=self._headers, **kwargs)

    async def search_contacts(
        self, text: str, *, email: str | None = None, phone_e164: str | None = None, limit: int = 10
    ) -> list[HubSpotContact]:
        """Contacts for what the agent typed: by its exact e-mail, its phone number, or free text."""
        if email:
            # An exact e-mail is a read by HubSpot's unique `email` property: it does not spend the
            # account's 5 searches per second, and it brings the associations the bundle reads next.
            found = await self.get_contact_by_email(email)
            return [HubSpotContact.from_object(found)] if found is not None else []
        payload = await self._call(
            "POST",
            "/crm/v3/objects/contacts/search",
            SEARCH_BUCKET,
            json_body=build_search_body(text, limit, phone_e164=phone_e164),
        )
        page = _parse(SearchResponse, payload, "contacts search")
        return [HubSpotContact.from_object(obj) for obj in page.results[:limit]]

    async def get_contact_by_email(self, email: str) -> CrmObject | None:
        """The contact whose primary e-mail this is (with its associations), or None."""
        try:
            payload = await self._call(
                "GET",
                f"/crm/v3/objects/contacts/{quote(email.strip(), safe='@')}",
                GENERAL_BUCKET,
                params={
                    "idProperty": "email",
                    "properties": ",".join(CONTACT_PROPERTIES),
                    "associations": "companies,deals,tickets",
                    "archived": "false",
                },
            )
        except UpstreamBadResponse as exc:
            if exc.status == 404:
                return None
            raise
        obj = _parse(CrmObject, payload, "contact")
        self._remember(obj)
        return obj

    def _remember(self, obj: CrmObject) -> None:
        """Keep a contact just read, associations included, for the bundle read that follows."""
        now = time.monotonic()
        for key, (at, _) in list(self._recent.items()):
            if now - at > RECENT_SECONDS:
                del self._recent[key]
        if len(self._recent) >= RECENT_MAX:
            self._recent.pop(next(iter(self._recent)))
        self._recent[obj.id] = (now, obj)

    def _recalled(self, contact_id: str) -> CrmObject | None:
        at, obj = self._recent.pop(contact_id, (0.0, None))
        return obj if obj is not None and time.monotonic() - at <= RECENT_SECONDS else None

    async def get_contact(self, contact_id: str) -> CrmObject:
        payload = await self._call(
            "GET",
            f"/crm/v3/objects/contacts/{_safe_id(contact_id)}",
            GENERAL_BUCKET,
            params={
                "properties": ",".join(CONTACT_PROPERTIES),
                "associations": "companies,deals,tickets",
                "archived": "false",
            },
        )
        return _parse(CrmObject, payload, "contact")

    async def batch_read(self, object_type: str, ids: list[str], properties: list[str]) -> list[CrmObject]:
        if not ids:
            return []
        payload = await self._call(
            "POST",
            f"/crm/v3/objects/{object_type}/batch/read",
            GENERAL_BUCKET,
            json_body={
                "inputs": [{"id": i} for i in ids],
                "properties": properties,
                "propertiesWithHistory": [],
            },
        )
        return _parse(BatchResponse, payload, f"{object_type} batch read").results

    async def owner_names(self) -> dict[str, str]:
        """Owner id -> name, read once and kept for OWNERS_TTL_SECONDS. An outage keeps the last list."""
        if time.monotonic() - self._owners_at < OWNERS_TTL_SECONDS:
            return self._owners
        async with self._owners_lock:
            if time.monotonic() - self._owners_at < OWNERS_TTL_SECONDS:
                return self._owners
            owners: dict[str, str] = {}
            after: str | None = None
            for _ in range(10):  # 10 pages of 100
                params = {"limit": "100", "archived": "false", **({"after": after} if after else {})}
                page = _parse(
                    OwnersPage,
                    await self._call("GET", "/crm/v3/owners", GENERAL_BUCKET, params=params),
                    "owners",
                )
                owners.update({o.id: o.display_name for o in page.results})
                after = page.paging.next.after if page.paging and page.paging.next else None
                if not after:
                    break
            self._owners, self._owners_at = owners, time.monotonic()
            return owners

    async def _owner_name(self, owner_id: str | None) -> str | None:
        if not owner_id:
            return None
        try:
            return (await self.owner_names()).get(owner_id)
        except UpstreamError:
            return None  # the owner's name is a nicety; the id is still shown

    async def get_contact_bundle(self, contact_id: str) -> HubSpotContactBundle:
        """The contact with its companies, deals and tickets: one read with associations, then one
        batch read per object type, all three at once."""
        obj = self._recalled(contact_id) or await self.get_contact(contact_id)
        assoc = obj.associations or {}

        def ids(kind: str) -> list[str]:
            found = assoc.get(kind)
            return list(dict.fromkeys(a.id for a in found.results))[:MAX_ASSOCIATED] if found else []

        companies, deals, tickets, owner_name = await asyncio.gather(
            self.batch_read("companies", ids("companies"), COMPANY_PROPERTIES),
            self.batch_read("deals", ids("deals"), DEAL_PROPERTIES),
            self.batch_read("tickets", ids("tickets"), TICKET_PROPERTIES),
            self._owner_name(obj.prop("hubspot_owner_id")),
        )
        deal_models = sorted(
            (HubSpotDeal.from_object(d) for d in deals), key=lambda d: d.close_date or "", reverse=True
        )
        ticket_models = sorted(
            (HubSpotTicket.from_object(t) for t in tickets), key=lambda t: t.created or "", reverse=True
        )
        contact = HubSpotContact.from_object(obj)
        contact.owner_name = owner_name
        return HubSpotContactBundle(
            contact=contact,
            companies=[HubSpotCompany.from_object(c) for c in companies],
            deals=deal_models,
            tickets=ticket_models,
        )

    # ------------------------------------------------------------------------------ write-back

    async def account(self) -> HubSpotAccount:
        """The account behind the token (portal id, UI domain), read once: it never changes for a token."""
        if self._account is None:
            payload = await self._call("GET", "/account-info/v3/details", GENERAL_BUCKET)
            wire = _parse(WireAccountDetails, payload, "account details")
            self._account = HubSpotAccount(
                portal_id=wire.portal_id,
                ui_domain=wire.ui_domain or "app.hubspot.com",
                time_zone=wire.time_zone,
            )
        return self._account

    async def list_contact_tickets(self, contact_id: str) -> list[HubSpotTicket]:
        """The contact's tickets, newest first (v4 associations, then one batch read)."""
        payload = await self._call(
            "GET",
            f"/crm/v4/objects/contacts/{_safe_id(contact_id)}/associations/tickets",
            GENERAL_BUCKET,
            params={"limit": "500"},
        )
        linked = _parse(V4AssociationsResponse, payload, "contact tickets").results
        ids = list(dict.fromkeys(str(a.to_object_id) for a in linked))[:MAX_ASSOCIATED]
        tickets = [
            HubSpotTicket.from_object(t) for t in await self.batch_read("tickets", ids, TICKET_PROPERTIES)
        ]
        return sorted(tickets, key=lambda t: t.created or "", reverse=True)

    async def create_note(
        self,
        contact_id: str,
        content: NoteContent,
        *,
        at: datetime,
        ticket_id: str | None = None,
        owner_id: str | None = None,
    ) -> HubSpotNote:
        """A note on the contact's timeline (and the ticket's, when given), made in one call so that a
        refused association leaves no note behind. Sent once: a create is not retried after a 5xx."""
        properties = {"hs_timestamp": str(int(at.timestamp() * 1000)), "hs_note_body": content.to_html()}
        if owner_id:
            properties["hubspot_owner_id"] = owner_id
        associations = [_note_link(_safe_id(contact_id), NOTE_TO_CONTACT)]
        if ticket_id:
            associations.append(_note_link(_safe_id(ticket_id), NOTE_TO_TICKET))
        with _explained("create a note"):
            payload = await self._call(
                "POST",
                "/crm/v3/objects/notes",
                GENERAL_BUCKET,
                json_body={"properties": properties, "associations": associations},
                idempotent=False,
            )
        note = HubSpotNote.from_object(_parse(CrmObject, payload, "note"))
        note.contact_ids = [contact_id]
        note.ticket_ids = [ticket_id] if ticket_id else []
        return note

    async def update_note(self, note_id: str, content: NoteContent) -> HubSpotNote:
        with _explained("update the note"):
            payload = await self._call(
                "PATCH",
                f"/crm/v3/objects/notes/{_safe_id(note_id)}",
                GENERAL_BUCKET,
                json_body={"properties": {"hs_note_body": content.to_html()}},
            )
        return HubSpotNote.from_object(_parse(CrmObject, payload, "note"))

    async def get_note(self, note_id: str) -> HubSpotNote:
        with _explained("read the note"):
            payload = await self._call(
                "GET",
                f"/crm/v3/objects/notes/{_safe_id(note_id)}",
                GENERAL_BUCKET,
                params={"properties": ",".join(NOTE_PROPERTIES), "associations": "contacts,tickets"},
            )
        return HubSpotNote.from_object(_parse(CrmObject, payload, "note"))

    async def find_contact_note(
        self, contact_id: str, marker: str, *, max_pages: int = 10
    ) -> HubSpotNote | None:
        """The note on the contact whose body contains `marker` (a nonce we put in its link), or None.

        How a write whose answer we never stored is found again: the contact's notes (v4 associations,
        500 a page, newest pages first is not promised, so every page up to `max_pages`), read in batches.
        """
        after: str | None = None
        for _ in range(max_pages):
            params = {"limit": "500", **({"after": after} if after else {})}
            with _explained("list the contact's notes"):
                payload = await self._call(
                    "GET",
                    f"/crm/v4/objects/contacts/{_safe_id(contact_id)}/associations/notes",
                    GENERAL_BUCKET,
                    params=params,
                )
            page = _parse(V4AssociationsResponse, payload, "contact notes")
            ids = list(dict.fromkeys(str(a.to_object_id) for a in page.results))
            for start in range(0, len(ids), 100):
                for obj in await self.batch_read("notes", ids[start : start + 100], NOTE_PROPERTIES):
                    if marker in (obj.prop("hs_note_body") or ""):
                        note = HubSpotNote.from_object(obj)
                        note.contact_ids = [contact_id]
                        return note
            after = page.paging.next.after if page.paging and page.paging.next else None
            if not after:
                return None
        return None

    async def associate_note(
        self, note_id: str, *, contact_id: str | None = None, ticket_id: str | None = None
    ) -> None:
        """Links an existing note to a contact and/or a ticket (v4, HubSpot-defined types); idempotent."""
        targets = [("contacts", contact_id, NOTE_TO_CONTACT), ("tickets", ticket_id, NOTE_TO_TICKET)]
        for to_type, to_id, type_id in targets:
            if not to_id:
                continue
            with _explained(f"link the note to the {to_type[:-1]}"):
                await self._call(
                    "PUT",
                    f"/crm/v4/objects/notes/{_safe_id(note_id)}/associations/{to_type}/{_safe_id(to_id)}",
                    GENERAL_BUCKET,
                    json_body=[{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
                )


def _safe_id(value: str) -> str:
    if not value or not value.replace("-", "").replace("_", "").isalnum():
        raise UpstreamBadResponse(VENDOR, "invalid object id")
    return value


def _note_link(to_id: str, type_id: int) -> dict[str, Any]:
    return {
        "to": {"id": to_id},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
    }


@contextmanager
def _explained(action: str) -> Iterator[None]:
    """A refused write as an error an agent can act on: a missing scope or a record gone from HubSpot."""
    try:
        yield
    except UpstreamForbidden as exc:
        if exc.code == "MISSING_SCOPES":
            reason = "the HubSpot private app lacks a scope it needs (MISSING_SCOPES)"
        else:
            reason = f"HubSpot refused it ({exc.code or 'HTTP 403'})"
        raise UpstreamForbidden(
            VENDOR, f"could not {action}: {reason}",
            status=exc.status, code=exc.code,
        ) from exc  # fmt: skip
    except UpstreamNotFound as exc:
        raise UpstreamNotFound(
            VENDOR, f"could not {action}: the contact, ticket or note no longer exists in HubSpot",
            status=exc.status, code=exc.code,
        ) from exc  # fmt: skip
