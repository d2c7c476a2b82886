"""Async HubSpot CRM client: contacts search and a contact's companies, deals and tickets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import httpx2
from pydantic import BaseModel, ValidationError

from supportlens.config import Settings
from supportlens.integrations.errors import UpstreamBadResponse, UpstreamError
from supportlens.integrations.http import RateLimit, VendorHTTP, VendorPolicy
from supportlens.integrations.hubspot.models import (
    COMPANY_PROPERTIES,
    CONTACT_PROPERTIES,
    DEAL_PROPERTIES,
    TICKET_PROPERTIES,
    BatchResponse,
    CrmObject,
    HubSpotCompany,
    HubSpotContact,
    HubSpotContactBundle,
    HubSpotDeal,
    HubSpotTicket,
    OwnersPage,
    SearchResponse,
)
from supportlens.search.query import SearchQuery

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


def build_search_body(query: SearchQuery, limit: int) -> dict[str, Any]:
    """The CRM search request for what the agent typed.

    E-mail: an exact `EQ` filter on `email`. Phone: `EQ` on `phone` or `mobilephone` in E.164 and
    in the national format people type, OR-ed as filter groups. Name and company: HubSpot's free-text
    `query` over the default searchable properties (first and last name, e-mail, phone, company).
    """
    body: dict[str, Any] = {
        "properties": CONTACT_PROPERTIES,
        "limit": max(1, min(limit, 100)),
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}],
    }
    if query.kind == "email" and query.email:
        body["filterGroups"] = [
            {"filters": [{"propertyName": "email", "operator": "EQ", "value": query.email}]}
        ]
    elif query.kind == "phone" and query.phone_e164:
        values = phone_variants(query.phone_e164, query.text)
        body["filterGroups"] = [
            {"filters": [{"propertyName": prop, "operator": "IN", "values": values}]}
            for prop in ("phone", "mobilephone")
        ]
    else:
        body["query"] = query.text
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

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _headers(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self._token.get_secret_value()}", "Accept": "application/json"}

    async def _call(self, method: str, path: str, bucket: str, **kwargs: Any) -> Any:
        return await self.http.request(method, path, bucket=bucket, headers_factory=self._headers, **kwargs)

    async def search_contacts(self, query: SearchQuery, limit: int = 10) -> list[HubSpotContact]:
        if query.kind == "email" and query.email:
            # An exact e-mail is a read by HubSpot's unique `email` property: it does not spend the
            # account's 5 searches per second, and it brings the associations the bundle reads next.
            found = await self.get_contact_by_email(query.email)
            return [HubSpotContact.from_object(found)] if found is not None else []
        payload = await self._call(
            "POST",
            "/crm/v3/objects/contacts/search",
            SEARCH_BUCKET,
            json_body=build_search_body(query, limit),
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


def _safe_id(value: str) -> str:
    if not value or not value.replace("-", "").replace("_", "").isalnum():
        raise UpstreamBadResponse(VENDOR, "invalid object id")
    return value
