"""Async Dwolla client: client-credentials token, customers, funding sources, transfers and their
failures (HAL), and webhook subscriptions."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx2
from pydantic import BaseModel, ValidationError

from supportlens.config import Settings
from supportlens.integrations.dwolla.models import (
    CustomersPage,
    DwollaCustomer,
    DwollaCustomerDetail,
    DwollaFundingSource,
    DwollaTransfer,
    DwollaTransferDetail,
    FundingSourcesPage,
    HalLink,
    TokenResponse,
    TransferFailure,
    TransfersPage,
    WebhookSubscription,
    WebhookSubscriptionsPage,
    WireCustomer,
    WireTransfer,
    WireWebhookSubscription,
)
from supportlens.integrations.errors import UpstreamBadResponse, UpstreamError
from supportlens.integrations.http import VendorHTTP, VendorPolicy

VENDOR = "dwolla"
HAL = "application/vnd.dwolla.v1.hal+json"
RENEW_BEFORE_SECONDS = 60.0  # a token is renewed this long before Dwolla says it expires

M = TypeVar("M", bound=BaseModel)


def policy_from_settings(settings: Settings) -> VendorPolicy:
    return VendorPolicy(
        vendor=VENDOR,
        base_url=settings.dwolla_base_url,
        read_timeout=settings.upstream_read_timeout_seconds,
        redis_url=settings.redis_url,
    )


def _parse(model: type[M], payload: Any, what: str) -> M:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise UpstreamBadResponse(VENDOR, f"unexpected shape of the {what} answer") from exc


def _id_path(value: str) -> str:
    if not value or not all(c.isalnum() or c == "-" for c in value):
        raise UpstreamBadResponse(VENDOR, "invalid resource id")
    return value


class DwollaClient:
    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
        policy: VendorPolicy | None = None,
    ) -> None:
        self.http = VendorHTTP(policy or policy_from_settings(settings), transport=transport)
        self._key = settings.dwolla_key
        self._secret = settings.dwolla_secret
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.token_fetches = 0  # how many tokens this client has asked for (renewals included)

    async def aclose(self) -> None:
        await self.http.aclose()

    # ------------------------------------------------------------------------------------ token

    def _token_fresh(self) -> bool:
        return self._token is not None and time.monotonic() < self._expires_at - RENEW_BEFORE_SECONDS

    async def _fetch_token(self) -> None:
        basic = base64.b64encode(
            f"{self._key.get_secret_value()}:{self._secret.get_secret_value()}".encode()
        ).decode()
        payload = await self.http.request(
            "POST",
            "/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}", "Accept": "application/json"},
        )
        token = _parse(TokenResponse, payload, "token")
        self.token_fetches += 1
        self._token = token.access_token
        self._expires_at = time.monotonic() + max(token.expires_in, 0)

    async def access_token(self) -> str:
        """The cached token, fetched or renewed (before expiry) by one caller while others wait."""
        if self._token_fresh():
            assert self._token is not None
            return self._token
        async with self._lock:
            if not self._token_fresh():
                await self._fetch_token()
        assert self._token is not None
        return self._token

    async def _renew_after_401(self, rejected: str | None) -> None:
        async with self._lock:
            if self._token == rejected:  # nobody renewed it meanwhile
                self._token = None
                await self._fetch_token()

    # ------------------------------------------------------------------------------------ calls

    async def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return await self._call("GET", path, params=params)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any | None = None,
        expect_json: bool = True,
        idempotent: bool = True,
    ) -> Any:
        used: dict[str, str | None] = {"token": None}

        async def headers() -> Mapping[str, str]:
            token = await self.access_token()
            used["token"] = token
            return {"Authorization": f"Bearer {token}", "Accept": HAL}

        async def renew() -> None:
            await self._renew_after_401(used["token"])

        return await self.http.request(
            method,
            path,
            params=params,
            json_body=json_body,
            headers_factory=headers,
            on_unauthorized=renew,
            expect_json=expect_json,
            idempotent=idempotent,
        )

    def _link_path(self, href: str) -> str:
        """A HAL link as a path on our configured base: the bearer token never goes to another host."""
        path = urlsplit(href).path
        base_path = urlsplit(self.http.policy.base_url).path.rstrip("/")
        if base_path and path.startswith(base_path):
            path = path[len(base_path) :]
        if not path.startswith("/"):
            raise UpstreamBadResponse(VENDOR, "unusable link in the answer")
        return path

    async def search_customers(
        self, text: str, *, email: str | None = None, phone_e164: str | None = None, limit: int = 10
    ) -> list[DwollaCustomer]:
        """Exact `email` when the agent typed one, else Dwolla's fuzzy `search` (names, business name,
        e-mail). Dwolla cannot search by phone: a phone number finds nothing here."""
        params: dict[str, Any] = {"limit": max(1, min(limit, 200))}
        if email:
            params["email"] = email
        elif phone_e164:
            return []
        else:
            params["search"] = text
        page = _parse(CustomersPage, await self._get("/customers", params), "customers search")
        return [DwollaCustomer.from_wire(c) for c in page.embedded.customers[:limit]]

    async def get_customer(self, customer_id: str) -> DwollaCustomer:
        payload = await self._get(f"/customers/{_id_path(customer_id)}")
        return DwollaCustomer.from_wire(_parse(WireCustomer, payload, "customer"))

    async def list_funding_sources(self, customer_id: str) -> list[DwollaFundingSource]:
        payload = await self._get(f"/customers/{_id_path(customer_id)}/funding-sources", {"removed": "false"})
        page = _parse(FundingSourcesPage, payload, "funding sources")
        return [DwollaFundingSource.from_wire(f) for f in page.embedded.funding_sources if not f.removed]

    async def get_transfer_failure(self, href: str) -> TransferFailure:
        return _parse(TransferFailure, await self._get(self._link_path(href)), "transfer failure")

    async def list_transfers(self, customer_id: str, limit: int = 25) -> list[DwollaTransfer]:
        """Newest first; failed transfers carry the ACH return code and description (their `failure`
        link is followed, all at once)."""
        cid = _id_path(customer_id)
        payload = await self._get(f"/customers/{cid}/transfers", {"limit": max(1, min(limit, 200))})
        page = _parse(TransfersPage, payload, "transfers")
        wire = sorted(page.embedded.transfers, key=lambda t: t.created.timestamp() if t.created else 0.0)
        wire.reverse()
        wire = wire[:limit]

        async def failure_of(t: WireTransfer) -> TransferFailure | None:
            link = t.links.get("failure")
            if t.status != "failed" or link is None:
                return None
            try:
                return await self.get_transfer_failure(link.href)
            except UpstreamError as exc:
                if exc.status == 404:
                    return None
                raise

        failures = await asyncio.gather(*(failure_of(t) for t in wire))
        return [_transfer(t, cid, f) for t, f in zip(wire, failures, strict=True)]

    async def get_transfer(self, transfer_id: str) -> DwollaTransferDetail:
        """One transfer by id, with its ACH return code and description when it failed (its `failure` link
        followed) and the customer it belongs to."""
        wire = _parse(WireTransfer, await self._get(f"/transfers/{_id_path(transfer_id)}"), "transfer")
        customer_id = next(
            (cid for rel in ("source", "destination") if (cid := _customer_in(wire.links.get(rel)))), None
        )
        failure = None
        link = wire.links.get("failure")
        if wire.status == "failed" and link is not None:
            try:
                failure = await self.get_transfer_failure(link.href)
            except UpstreamError as exc:
                if exc.status != 404:
                    raise
        return DwollaTransferDetail(
            transfer=_transfer(wire, customer_id or "", failure), customer_id=customer_id
        )

    # -------------------------------------------------------------------------- webhook subscriptions

    async def create_webhook_subscription(self, url: str, secret: str) -> WebhookSubscription:
        """Dwolla answers 201 with only a Location; the subscription is read from there. Sent once (a
        second POST after a lost answer would make a second subscription, and Dwolla allows few)."""
        response = await self._call(
            "POST",
            "/webhook-subscriptions",
            json_body={"url": url, "secret": secret},
            expect_json=False,
            idempotent=False,
        )
        location = response.headers.get("location")
        if not location:
            raise UpstreamBadResponse(VENDOR, "no Location for the new webhook subscription")
        payload = await self._get(self._link_path(location))
        return WebhookSubscription.from_wire(_parse(WireWebhookSubscription, payload, "webhook subscription"))

    async def list_webhook_subscriptions(self) -> list[WebhookSubscription]:
        page = _parse(
            WebhookSubscriptionsPage, await self._get("/webhook-subscriptions"), "webhook subscriptions"
        )
        return [WebhookSubscription.from_wire(w) for w in page.embedded.subscriptions]

    async def set_webhook_subscription_paused(
        self, subscription_id: str, paused: bool
    ) -> WebhookSubscription:
        payload = await self._call(
            "POST", f"/webhook-subscriptions/{_id_path(subscription_id)}", json_body={"paused": paused}
        )
        return WebhookSubscription.from_wire(_parse(WireWebhookSubscription, payload, "webhook subscription"))

    async def delete_webhook_subscription(self, subscription_id: str) -> WebhookSubscription:
        payload = await self._call("DELETE", f"/webhook-subscriptions/{_id_path(subscription_id)}")
        return WebhookSubscription.from_wire(_parse(WireWebhookSubscription, payload, "webhook subscription"))

    async def get_customer_detail(self, customer_id: str, transfers_limit: int = 25) -> DwollaCustomerDetail:
        customer, sources, transfers = await asyncio.gather(
            self.get_customer(customer_id),
            self.list_funding_sources(customer_id),
            self.list_transfers(customer_id, transfers_limit),
        )
        return DwollaCustomerDetail(customer=customer, funding_sources=sources, transfers=transfers)


def _transfer(t: WireTransfer, customer_id: str, failure: TransferFailure | None) -> DwollaTransfer:
    def ends_with_customer(rel: str) -> bool:
        link = t.links.get(rel)
        return bool(link and urlsplit(link.href).path.rstrip("/").endswith(f"/customers/{customer_id}"))

    direction = "out" if ends_with_customer("source") else "in" if ends_with_customer("destination") else None
    return DwollaTransfer(
        id=t.id,
        status=t.status,
        amount=t.amount.value,
        currency=t.amount.currency,
        created=t.created,
        direction=direction,
        correlation_id=t.correlation_id,
        failure_code=failure.code if failure else None,
        failure_description=failure.description if failure else None,
    )


def _customer_in(link: HalLink | None) -> str | None:
    """The customer id a HAL link points at (`.../customers/{id}`), if it points at a customer."""
    if link is None:
        return None
    parts = urlsplit(link.href).path.rstrip("/").split("/")
    return parts[-1] if len(parts) >= 2 and parts[-2] == "customers" and parts[-1] else None
