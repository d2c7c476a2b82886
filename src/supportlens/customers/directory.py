"""The customer directory: a customer's HubSpot and Dwolla records, each source under its own deadline.
Search, the journey, "what happened" and erasure all read customers through it (the search page adds
the local sessions beside it: `search/sources.py`).

One slow or failing source never holds up the others: each runs as its own task and the answer for each
is `{status: ok|error|timeout, items, error?, tookMs}`. Concurrent identical lookups share one upstream
call (in-flight sharing), and answers are kept for a short time per source and normalised query.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from supportlens.config import Settings
from supportlens.customers.cache import SearchCache, make_cache
from supportlens.customers.correlation import Correlation, correlate
from supportlens.customers.emails import canonical_email_or_none
from supportlens.customers.query import SearchQuery
from supportlens.integrations.dwolla.client import DwollaClient
from supportlens.integrations.dwolla.models import DwollaCustomer, DwollaCustomerDetail
from supportlens.integrations.errors import UpstreamError, in_plain_words
from supportlens.integrations.hubspot.client import HubSpotClient
from supportlens.integrations.hubspot.models import HubSpotContact, HubSpotContactBundle

log = structlog.get_logger(__name__)

Status = Literal["ok", "error", "timeout"]
MAX_CONTACTS = 10
DETAILED_CONTACTS = 5  # contacts whose companies, deals and tickets are fetched
DETAILED_CUSTOMERS = 5  # Dwolla customers whose funding sources and transfers are fetched
TRANSFERS_SHOWN = 25
CACHED_SOURCES = frozenset({"hubspot", "dwolla"})
# How long Dwolla's lookup waits for HubSpot's contacts (to follow the Dwolla ids HubSpot keeps),
# so a slow HubSpot never holds the Dwolla panel back for long.
HINT_SHARE = 0.5
HINT_WAIT = 1.0  # when Dwolla itself found nobody
HINT_GRACE = 0.25  # when it did: after its own details are in


@dataclass
class SourceResult:
    status: Status
    items: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    took_ms: int = 0
    cached: bool = False
    plain: str | None = None  # the failure in an agent's words, after the source's name

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": self.status,
            "items": self.items,
            "tookMs": self.took_ms,
            "cached": self.cached,
        }
        if self.error is not None:
            body["error"] = self.error
        if self.plain is not None:
            body["errorPlain"] = self.plain
        return body


class CustomerDirectory:
    def __init__(
        self,
        *,
        hubspot: HubSpotClient,
        dwolla: DwollaClient,
        cache: SearchCache,
        sessionmaker: Any,
        deadline_seconds: float,
        settings: Settings,
    ) -> None:
        self.hubspot_client = hubspot
        self.dwolla_client = dwolla
        self.cache = cache
        self.sessionmaker = sessionmaker
        self.deadline = deadline_seconds
        self.settings = settings  # what the sessions source reads by (threshold, recording retention)
        self._inflight: dict[tuple[str, str], asyncio.Task[list[dict[str, Any]]]] = {}

    # ------------------------------------------------------------------------------ producers

    async def _contacts(self, query: SearchQuery) -> list[dict[str, Any]]:
        """HubSpot's contacts search alone, shared by the HubSpot panel and the Dwolla lookup (which
        follows the Dwolla ids HubSpot keeps), so one search answers both."""
        contacts = await self.hubspot_client.search_contacts(**query.terms, limit=MAX_CONTACTS)
        return [c.model_dump(mode="json", by_alias=True) for c in contacts]

    async def _hubspot_items(self, query: SearchQuery) -> list[dict[str, Any]]:
        raw = await self._shared("contacts", query, refresh=False)
        contacts = [HubSpotContact.model_validate(c) for c in raw]
        detailed = contacts[:DETAILED_CONTACTS]
        bundles = await asyncio.gather(
            *(self.hubspot_client.get_contact_bundle(c.id) for c in detailed), return_exceptions=True
        )
        items: list[dict[str, Any]] = []
        for contact, bundle in zip(detailed, bundles, strict=True):
            if isinstance(bundle, HubSpotContactBundle):
                items.append(bundle.model_dump(mode="json", by_alias=True))
            elif isinstance(bundle, UpstreamError):
                item = HubSpotContactBundle(contact=contact).model_dump(mode="json", by_alias=True)
                item["detailError"] = bundle.message
                items.append(item)
            else:
                raise bundle
        for contact in contacts[DETAILED_CONTACTS:]:
            items.append(HubSpotContactBundle(contact=contact).model_dump(mode="json", by_alias=True))
        return items

    async def _hubspot_hints(self, query: SearchQuery) -> list[HubSpotContact]:
        """The contacts HubSpot finds for the query; HubSpot failing only means no hints."""
        try:
            raw = await self._shared("contacts", query, refresh=False)
        except UpstreamError:
            return []
        return [HubSpotContact.model_validate(c) for c in raw]

    async def _dwolla_details(self, customers: list[DwollaCustomer]) -> list[DwollaCustomerDetail]:
        async def detail(c: DwollaCustomer) -> DwollaCustomerDetail:
            sources, transfers = await asyncio.gather(
                self.dwolla_client.list_funding_sources(c.id),
                self.dwolla_client.list_transfers(c.id, limit=TRANSFERS_SHOWN),
            )
            return DwollaCustomerDetail(customer=c, funding_sources=sources, transfers=transfers)

        return list(await asyncio.gather(*(detail(c) for c in customers)))

    async def _dwolla_items(self, query: SearchQuery) -> list[dict[str, Any]]:
        """Dwolla's own search (exact e-mail or fuzzy), plus the customers whose Dwolla id HubSpot keeps
        for the contacts it finds: that catches a customer whose e-mail differs between the systems, and
        is the only way to reach Dwolla from a phone number. HubSpot is waited for only briefly once
        Dwolla has its own answer, so a slow HubSpot never holds this panel back for long."""
        hints = asyncio.create_task(self._hubspot_hints(query))
        try:
            own = (
                []
                if query.kind == "phone"
                else await self.dwolla_client.search_customers(
                    query.text, email=query.email, limit=MAX_CONTACTS
                )
            )
            own_details = await self._dwolla_details(own[:DETAILED_CUSTOMERS])
            if query.kind == "phone":
                contacts = await hints
            else:
                grace = HINT_GRACE if own else min(HINT_WAIT, self.deadline * HINT_SHARE)
                done, _ = await asyncio.wait({hints}, timeout=grace)
                contacts = hints.result() if done else []
        finally:
            if not hints.done():
                hints.cancel()
        found = {c.id for c in own}
        extra_ids = list(
            dict.fromkeys(c.dwolla_id for c in contacts if c.dwolla_id and c.dwolla_id not in found)
        )
        extra: list[DwollaCustomerDetail] = []
        fetched = await asyncio.gather(
            *(
                self.dwolla_client.get_customer_detail(i, TRANSFERS_SHOWN)
                for i in extra_ids[:DETAILED_CUSTOMERS]
            ),
            return_exceptions=True,
        )
        for result in fetched:
            if isinstance(result, DwollaCustomerDetail):
                extra.append(result)
            elif isinstance(result, UpstreamError) and result.status == 404:
                continue  # HubSpot keeps an id Dwolla does not know: the correlation will say so
            elif isinstance(result, BaseException):
                raise result
        if query.kind == "phone":
            emails = [c.email for c in contacts if c.email and not c.dwolla_id][:DETAILED_CUSTOMERS]
            known = found | {d.customer.id for d in extra}
            by_email: list[DwollaCustomer] = []
            for batch in await asyncio.gather(
                *(self.dwolla_client.search_customers(e, email=_canonical(e), limit=3) for e in emails)
            ):
                by_email += [c for c in batch if c.id not in known]
            extra += await self._dwolla_details(by_email[:DETAILED_CUSTOMERS])
        items = [d.model_dump(mode="json", by_alias=True) for d in [*own_details, *extra]]
        items += [
            DwollaCustomerDetail(customer=c).model_dump(mode="json", by_alias=True)
            for c in own[DETAILED_CUSTOMERS:]
        ]
        return items

    # ------------------------------------------------------------------------------ plumbing

    def _producer(self, source: str) -> Callable[[SearchQuery], Awaitable[list[dict[str, Any]]]]:
        return {"hubspot": self._hubspot_items, "dwolla": self._dwolla_items, "contacts": self._contacts}[
            source
        ]

    async def _shared(self, source: str, query: SearchQuery, *, refresh: bool) -> list[dict[str, Any]]:
        """The source's items: from a lookup already under way, or from a new one."""
        key = (source, query.normalized)
        task = self._inflight.get(key)
        if task is None or (refresh and task.done()):
            task = asyncio.create_task(self._produce(source, query), name=f"search-{source}")
            self._inflight[key] = task
            task.add_done_callback(lambda t, k=key: self._forget(k, t))  # type: ignore[misc]
        return await asyncio.shield(task)

    def _forget(self, key: tuple[str, str], task: asyncio.Task[Any]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]
        if not task.cancelled():
            task.exception()  # mark retrieved: a failure nobody awaited any more is not "never retrieved"

    async def _produce(self, source: str, query: SearchQuery) -> list[dict[str, Any]]:
        items = await self._producer(source)(query)
        if source in CACHED_SOURCES:
            try:
                await self.cache.set(source, query.normalized, items)
            except Exception as exc:  # a cache outage must not fail the search
                log.warning("search.cache_set_failed", source=source, error=type(exc).__name__)
        return items

    async def _cached(self, source: str, query: SearchQuery) -> list[dict[str, Any]] | None:
        try:
            return await self.cache.get(source, query.normalized)
        except Exception as exc:
            log.warning("search.cache_get_failed", source=source, error=type(exc).__name__)
            return None

    async def source(self, source: str, query: SearchQuery, *, refresh: bool = False) -> SourceResult:
        """One upstream source under the deadline."""
        started = time.perf_counter()

        def took() -> int:
            return int((time.perf_counter() - started) * 1000)

        if not refresh:
            hit = await self._cached(source, query)
            if hit is not None:
                return SourceResult("ok", hit, took_ms=took(), cached=True)
        try:
            items = await asyncio.wait_for(self._shared(source, query, refresh=refresh), self.deadline)
        except TimeoutError:
            waited = f"no answer within {self.deadline:g} s"
            return SourceResult("timeout", error=waited, took_ms=took(), plain=f"is not answering ({waited})")
        except UpstreamError as exc:
            return SourceResult("error", error=exc.message, took_ms=took(), plain=in_plain_words(exc))
        except Exception as exc:
            log.exception("search.source_failed", source=source)
            return SourceResult(
                "error",
                error=f"unexpected error ({type(exc).__name__})",
                took_ms=took(),
                plain="could not be read (an error in SupportLens; it is logged)",
            )
        return SourceResult("ok", items, took_ms=took())

    async def aclose(self) -> None:
        for task in list(self._inflight.values()):
            task.cancel()
        await self.cache.aclose()


def correlation_of(query: SearchQuery, hubspot: SourceResult, dwolla: SourceResult) -> Correlation:
    bundles = (
        [HubSpotContactBundle.model_validate(i) for i in hubspot.items] if hubspot.status == "ok" else None
    )
    customers = (
        [DwollaCustomerDetail.model_validate(i).customer for i in dwolla.items]
        if dwolla.status == "ok"
        else None
    )
    return correlate(bundles, customers, query_email=query.email)


def _canonical(email: str) -> str:
    return canonical_email_or_none(email) or email.lower()


def open_directory(
    settings: Settings,
    hubspot: HubSpotClient,
    dwolla: DwollaClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    stack: AsyncExitStack,
) -> CustomerDirectory:
    """The app's customer directory on its vendor clients (built at start-up); closed with the stack."""
    directory = CustomerDirectory(
        hubspot=hubspot,
        dwolla=dwolla,
        cache=make_cache(settings),
        sessionmaker=sessionmaker,
        deadline_seconds=settings.search_source_deadline_seconds,
        settings=settings,
    )
    stack.push_async_callback(directory.aclose)
    return directory
