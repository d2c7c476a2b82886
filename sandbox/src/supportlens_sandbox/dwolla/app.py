"""Dwolla API simulator: client-credentials tokens, customers, funding sources, transfers, failures.

Speaks Dwolla's wire format per its OpenAPI specification: `POST /token` (Basic auth or
client_id/client_secret form fields, grant_type=client_credentials), every other call needs
`Accept: application/vnd.dwolla.v1.hal+json` and `Authorization: Bearer <token>`; HAL bodies with
absolute `_links` built from the simulator's own base URL; errors `{"code", "message"}`
(NotFound, ValidationError with `_embedded.errors`, InvalidAccessToken, ExpiredAccessToken,
InvalidVersion, TooManyRequests).

Webhook subscriptions, events and signed deliveries with Dwolla's retries are in `webhooks.py`;
`POST /__sandbox/transfer-failures` makes a transfer fail (an existing one, or a new one for a
customer) and sends the event to every subscription.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import secrets
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from supportlens_sandbox.dwolla.webhooks import (
    FAILURE_TOPICS,
    MAX_SUBSCRIPTIONS,
    SECRET_MAX,
    Delivery,
    Event,
    Subscription,
    WebhookHub,
)
from supportlens_sandbox.knobs import ADMIN_PREFIX, Knobs, SandboxControl, wrap
from supportlens_sandbox.world import (
    ACCOUNT_BANK_FS_ID,
    ACCOUNT_ID,
    ACCOUNT_NAME,
    ACH_RETURNS,
    BUSINESS_CLASSIFICATION,
    Customer,
    FundingSource,
    Transfer,
    World,
    demo_world,
)

HAL = "application/vnd.dwolla.v1.hal+json"
DWOLLA_KEY = "sandbox-key-5upp0r7l3n5"
DWOLLA_SECRET = "sandbox-secret-7f3c2a1b9e8d4c7b"  # noqa: S105 - the sandbox's own credentials
MAX_LIMIT = 200
DEFAULT_LIMIT = 25
TRANSFER_STATUSES = ("pending", "processed", "failed", "cancelled")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


class HalResponse(JSONResponse):
    media_type = HAL

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode()


def dwolla_datetime(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def err(status: int, code: str, message: str, errors: list[dict[str, Any]] | None = None) -> HalResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if errors is not None:
        body["_embedded"] = {"errors": errors}
    return HalResponse(body, status_code=status)


def validation_error(*problems: tuple[str, str, str]) -> HalResponse:
    """400 ValidationError; each problem is (code, message, path)."""
    return err(
        400,
        "ValidationError",
        "Validation error(s) present. See embedded errors list for more details.",
        [{"code": code, "message": message, "path": path, "_links": {}} for code, message, path in problems],
    )


def not_found() -> HalResponse:
    return err(404, "NotFound", "The requested resource was not found.")


def too_many() -> HalResponse:
    return err(
        429,
        "TooManyRequests",
        "Too many requests. Please wait a short period of time before re-attempting the request.",
    )


def _error_body(status: int) -> tuple[bytes, str]:
    if status == 429:
        return bytes(too_many().body), HAL
    body = {"code": "ServerError", "message": f"A server error occurred. Error ID: {uuid.uuid4()}."}
    return json.dumps(body).encode(), HAL


class TokenStore:
    def __init__(self) -> None:
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()

    def issue(self, ttl: int) -> str:
        token = secrets.token_urlsafe(36)
        with self._lock:
            self._tokens[token] = time.monotonic() + ttl
        return token

    def check(self, token: str) -> str | None:
        """None when valid, else the Dwolla error code."""
        with self._lock:
            expiry = self._tokens.get(token)
        if expiry is None:
            return "InvalidAccessToken"
        if time.monotonic() >= expiry:
            return "ExpiredAccessToken"
        return None

    def expire_all(self) -> int:
        with self._lock:
            now = time.monotonic()
            for token in self._tokens:
                self._tokens[token] = now
            return len(self._tokens)


def create_dwolla_app(
    world: World | None = None,
    knobs: Knobs | None = None,
    *,
    key: str = DWOLLA_KEY,
    secret: str = DWOLLA_SECRET,
) -> FastAPI:
    """A Dwolla simulator over `world` (default: `demo_world()`), controlled by `knobs`."""
    world = world or demo_world()
    control = SandboxControl("dwolla", knobs)
    tokens = TokenStore()
    app = FastAPI(title="Dwolla sandbox", openapi_url=None, docs_url=None, redoc_url=None)
    customers = sorted(world.dwolla_customers, key=lambda c: c.created, reverse=True)
    by_id = {c.dwolla_id: c for c in customers}
    hub = WebhookHub(control)
    # The world is shared (cached) between simulators: transfers failed here live in this overlay.
    overlay: dict[str, Transfer] = {}
    added: dict[str, list[Transfer]] = {}  # customer id -> transfers made here, newest first

    def transfers_of(c: Customer) -> list[Transfer]:
        assert c.dwolla_id is not None
        return added.get(c.dwolla_id, []) + [overlay.get(t.id, t) for t in c.transfers]

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def link(request: Request, path: str, resource_type: str) -> dict[str, str]:
        return {"href": f"{base(request)}{path}", "type": HAL, "resource-type": resource_type}

    def guard(request: Request) -> HalResponse | None:
        """Version, token and (optional) rate checks every API call makes."""
        if HAL not in request.headers.get("accept", ""):
            return err(406, "InvalidVersion", "Missing or invalid API version.")
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return err(401, "InvalidAccessToken", "Invalid access token.")
        problem = tokens.check(value.strip())
        if problem == "ExpiredAccessToken":
            return err(401, "ExpiredAccessToken", "Expired access token.")
        if problem:
            return err(401, "InvalidAccessToken", "Invalid access token.")
        if not control.allow(f"token:{value.strip()}", control.knobs.requests_per_second, 1.0):
            control.count("rate_limited")
            return too_many()
        return None

    def paging(request: Request, path: str, params: dict[str, str], limit: int, offset: int, total: int,
               resource_type: str) -> dict[str, Any]:  # fmt: skip
        def at(off: int) -> dict[str, str]:
            query = urlencode({**params, "limit": limit, "offset": off})
            return link(request, f"{path}?{query}", resource_type)

        last = max(0, (total - 1) // limit * limit) if total else 0
        links = {"self": at(offset), "first": at(0), "last": at(last)}
        if offset + limit < total:
            links["next"] = at(offset + limit)
        if offset > 0:
            links["prev"] = at(max(0, offset - limit))
        return links

    def limit_offset(request: Request) -> tuple[int, int] | HalResponse:
        problems = []
        limit = offset = 0
        raw_limit = request.query_params.get("limit")
        raw_offset = request.query_params.get("offset")
        try:
            limit = int(raw_limit) if raw_limit not in (None, "") else DEFAULT_LIMIT
            if not 1 <= limit <= MAX_LIMIT:
                raise ValueError
        except ValueError:
            problems.append(("InvalidFormat", f"Limit must be a number between 1 and {MAX_LIMIT}.", "/limit"))
        try:
            offset = int(raw_offset) if raw_offset not in (None, "") else 0
            if offset < 0:
                raise ValueError
        except ValueError:
            problems.append(("InvalidFormat", "Offset must be a non-negative number.", "/offset"))
        if problems:
            return validation_error(*problems)
        return limit, offset

    # -- renderers
    def render_customer(request: Request, c: Customer) -> dict[str, Any]:
        cid = c.dwolla_id
        assert cid is not None
        path = f"/customers/{cid}"
        links = {
            "self": link(request, path, "customer"),
            "edit": link(request, path, "customer"),
            "edit-form": link(request, path, "customer"),
            "funding-sources": link(request, f"{path}/funding-sources", "funding-source"),
            "transfers": link(request, f"{path}/transfers", "transfer"),
        }
        status = c.dwolla_status
        if status == "verified":
            links["send"] = link(request, "/transfers", "transfer")
            links["receive"] = link(request, "/transfers", "transfer")
            if c.dwolla_type == "business":
                links["beneficial-owners"] = link(request, f"{path}/beneficial-owners", "beneficial-owner")
        elif status == "unverified":
            links["receive"] = link(request, "/transfers", "transfer")
            if c.dwolla_type == "unverified":
                links["send"] = link(request, "/transfers", "transfer")
        elif status == "retry":
            links["retry-verification"] = link(request, path, "customer")
        elif status == "document":
            links["verify-with-document"] = link(request, f"{path}/documents", "document")
            links["documents"] = link(request, f"{path}/documents", "document")
        elif status == "kba":
            links["verify-kba-questions"] = link(request, f"{path}/kba", "kba")
        elif status == "deactivated":
            links["reactivate"] = link(request, path, "customer")
        body: dict[str, Any] = {
            "_links": links,
            "id": cid,
            "firstName": c.dwolla_first_name,
            "lastName": c.dwolla_last_name,
            "email": c.dwolla_email,
            "type": c.dwolla_type,
            "status": status,
            "created": dwolla_datetime(c.created),
        }
        if c.dwolla_type in ("personal", "business"):
            body.update(address1=c.address1, city=c.city, state=c.state, postalCode=c.postal_code)
        if c.dwolla_type == "business":
            body.update(
                phone=c.phone.removeprefix("+1"),
                businessName=c.dwolla_business_name,
                businessType=c.dwolla_business_type,
                businessClassification=BUSINESS_CLASSIFICATION,
                controller={
                    "firstName": c.dwolla_first_name,
                    "lastName": c.dwolla_last_name,
                    "title": "CEO",
                    "address": {
                        "address1": c.address1,
                        "city": c.city,
                        "stateProvinceRegion": c.state,
                        "postalCode": c.postal_code,
                        "country": "US",
                    },
                },
            )
        return body

    def render_funding_source(request: Request, fs: FundingSource) -> dict[str, Any]:
        path = f"/funding-sources/{fs.id}"
        links = {
            "self": link(request, path, "funding-source"),
            "customer": link(request, f"/customers/{fs.customer_dwolla_id}", "customer"),
        }
        body: dict[str, Any] = {"_links": links, "id": fs.id, "status": fs.status, "type": fs.type}
        if fs.type == "balance":
            links["balance"] = link(request, f"{path}/balance", "balance")
            links["with-available-balance"] = link(request, path, "funding-source")
        else:
            if not fs.removed:
                links["remove"] = link(request, path, "funding-source")
                if fs.status == "unverified":
                    links["initiate-micro-deposits"] = link(
                        request, f"{path}/micro-deposits", "micro-deposits"
                    )
            links["transfer-from-balance"] = link(request, "/transfers", "transfer")
            links["transfer-to-balance"] = link(request, "/transfers", "transfer")
            body["bankAccountType"] = fs.bank_account_type
        body["name"] = fs.name
        body["created"] = dwolla_datetime(fs.created)
        body["removed"] = fs.removed
        body["channels"] = list(fs.channels)
        if fs.type == "bank":
            body["bankName"] = fs.bank_name
            body["fingerprint"] = fs.fingerprint
        return body

    def render_transfer(request: Request, t: Transfer) -> dict[str, Any]:
        customer_link = link(request, f"/customers/{t.customer_dwolla_id}", "customer")
        account_link = link(request, f"/accounts/{ACCOUNT_ID}", "account")
        customer_fs = link(request, f"/funding-sources/{t.customer_funding_source_id}", "funding-source")
        account_fs = link(request, f"/funding-sources/{ACCOUNT_BANK_FS_ID}", "funding-source")
        debit = t.source_is_customer
        links = {
            "self": link(request, f"/transfers/{t.id}", "transfer"),
            "source": customer_link if debit else account_link,
            "destination": account_link if debit else customer_link,
            "source-funding-source": customer_fs if debit else account_fs,
            "destination-funding-source": account_fs if debit else customer_fs,
        }
        if t.status == "pending":
            links["cancel"] = link(request, f"/transfers/{t.id}", "transfer")
        if t.status == "failed":
            links["failure"] = link(request, f"/transfers/{t.id}/failure", "failure")
        clearing = {"source": "standard"}
        if t.clearing == "next-available":
            clearing["destination"] = "next-available"
        return {
            "_links": links,
            "id": t.id,
            "status": t.status,
            "amount": {"value": t.amount_value, "currency": t.currency},
            "created": dwolla_datetime(t.created),
            "clearing": clearing,
            "metadata": {"note": t.note},
            "correlationId": t.correlation_id,
            "individualAchId": "IDN" + t.id.replace("-", "")[:12].upper(),
        }

    # -- token
    @app.post("/token")
    async def token(request: Request) -> Response:
        raw = (await request.body()).decode("utf-8", "replace")
        form = {k: v[0] for k, v in parse_qs(raw).items()}
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, _, client_secret = base64.b64decode(encoded.strip()).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                client_id = client_secret = None
        if (
            not client_id
            or not secrets.compare_digest(client_id, key)
            or not client_secret
            or not (secrets.compare_digest(client_secret, secret))
        ):
            return JSONResponse(
                {"error": "invalid_client", "error_description": "Invalid client credentials."}, 401
            )
        grant = form.get("grant_type")
        if not grant:
            return JSONResponse({"error": "invalid_request", "error_description": "Missing grant_type."}, 400)
        if grant != "client_credentials":
            return JSONResponse(
                {"error": "unsupported_grant_type", "error_description": "Unsupported grant."}, 400
            )
        ttl = control.knobs.token_ttl_seconds
        control.count("tokens_issued")
        return JSONResponse({"access_token": tokens.issue(ttl), "token_type": "bearer", "expires_in": ttl})

    # -- root and account
    @app.get("/")
    async def root(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        return HalResponse(
            {
                "_links": {
                    "account": link(request, f"/accounts/{ACCOUNT_ID}", "account"),
                    "customers": link(request, "/customers", "customer"),
                    "events": link(request, "/events", "event"),
                }
            }
        )

    @app.get("/accounts/{account_id}")
    async def account(account_id: str, request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        if account_id != ACCOUNT_ID:
            return not_found()
        return HalResponse(
            {
                "_links": {
                    "self": link(request, f"/accounts/{ACCOUNT_ID}", "account"),
                    "funding-sources": link(
                        request, f"/accounts/{ACCOUNT_ID}/funding-sources", "funding-source"
                    ),
                    "transfers": link(request, f"/accounts/{ACCOUNT_ID}/transfers", "transfer"),
                    "customers": link(request, "/customers", "customer"),
                },
                "id": ACCOUNT_ID,
                "name": ACCOUNT_NAME,
                "timezoneOffset": -6,
                "type": "Commercial",
            }
        )

    # -- customers
    @app.get("/customers")
    async def list_customers(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        paged = limit_offset(request)
        if isinstance(paged, HalResponse):
            return paged
        limit, offset = paged
        params = request.query_params
        search = (params.get("search") or "").strip().lower()
        email = (params.get("email") or "").strip().lower()
        status = (params.get("status") or "").strip().lower()
        found = [
            c
            for c in customers
            if (not email or (c.dwolla_email or "").lower() == email)
            and (not status or c.dwolla_status == status)
            and (not search or _matches_search(c, search))
        ]
        kept = {k: v for k, v in (("search", params.get("search")), ("email", params.get("email")),
                                  ("status", params.get("status"))) if v}  # fmt: skip
        body = {
            "_links": paging(request, "/customers", kept, limit, offset, len(found), "customer"),
            "_embedded": {"customers": [render_customer(request, c) for c in found[offset : offset + limit]]},
            "total": len(found),
        }
        return HalResponse(body)

    def find_customer(customer_id: str) -> Customer | None:
        return by_id.get(customer_id.lower()) if _UUID.match(customer_id) else None

    @app.get("/customers/{customer_id}")
    async def get_customer(customer_id: str, request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        c = find_customer(customer_id)
        if c is None:
            return not_found()
        return HalResponse(render_customer(request, c))

    @app.get("/customers/{customer_id}/funding-sources")
    async def customer_funding_sources(customer_id: str, request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        c = find_customer(customer_id)
        if c is None:
            return not_found()
        removed = (request.query_params.get("removed") or "true").lower()
        if removed not in ("true", "false"):
            return validation_error(("InvalidFormat", "Removed must be true or false.", "/removed"))
        sources = [fs for fs in c.funding_sources if removed == "true" or not fs.removed]
        return HalResponse(
            {
                "_links": {
                    "self": link(request, f"/customers/{c.dwolla_id}/funding-sources", "funding-source"),
                    "customer": link(request, f"/customers/{c.dwolla_id}", "customer"),
                },
                "_embedded": {"funding-sources": [render_funding_source(request, fs) for fs in sources]},
            }
        )

    @app.get("/customers/{customer_id}/transfers")
    async def customer_transfers(customer_id: str, request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        c = find_customer(customer_id)
        if c is None:
            return not_found()
        paged = limit_offset(request)
        if isinstance(paged, HalResponse):
            return paged
        limit, offset = paged
        params = request.query_params
        problems: list[tuple[str, str, str]] = []
        start_amount = _decimal(params.get("startAmount"), "/startAmount", problems)
        end_amount = _decimal(params.get("endAmount"), "/endAmount", problems)
        start_date = _date(params.get("startDate"), "/startDate", problems)
        end_date = _date(params.get("endDate"), "/endDate", problems)
        status = params.get("status")
        if status and status not in TRANSFER_STATUSES:
            problems.append(
                ("InvalidFormat", "Status must be one of " + ", ".join(TRANSFER_STATUSES) + ".", "/status")
            )
        if problems:
            return validation_error(*problems)
        search = (params.get("search") or "").strip().lower()
        correlation = params.get("correlationId")
        found = [
            t
            for t in transfers_of(c)
            if (not status or t.status == status)
            and (start_amount is None or t.amount >= start_amount)
            and (end_amount is None or t.amount <= end_amount)
            and (start_date is None or t.created.date() >= start_date)
            and (end_date is None or t.created.date() <= end_date)
            and (not correlation or t.correlation_id == correlation)
            and (not search or _matches_search(c, search) or search in ACCOUNT_NAME.lower())
        ]
        found.sort(key=lambda t: t.created, reverse=True)
        kept = {
            k: v
            for k in ("search", "startAmount", "endAmount", "startDate", "endDate", "status", "correlationId")
            if (v := params.get(k))
        }
        path = f"/customers/{c.dwolla_id}/transfers"
        return HalResponse(
            {
                "_links": paging(request, path, kept, limit, offset, len(found), "transfer"),
                "_embedded": {
                    "transfers": [render_transfer(request, t) for t in found[offset : offset + limit]]
                },
                "total": len(found),
            }
        )

    # -- transfers and funding sources
    def find_transfer(transfer_id: str) -> Transfer | None:
        if not _UUID.match(transfer_id):
            return None
        return overlay.get(transfer_id.lower()) or world.transfers.get(transfer_id.lower())

    @app.get("/transfers/{transfer_id}")
    async def get_transfer(transfer_id: str, request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        t = find_transfer(transfer_id)
        if t is None:
            return not_found()
        return HalResponse(render_transfer(request, t))

    @app.get("/transfers/{transfer_id}/failure")
    async def transfer_failure(transfer_id: str, request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        t = find_transfer(transfer_id)
        if t is None or t.failure_code is None:
            return not_found()
        return HalResponse(
            {
                "_links": {
                    "self": link(request, f"/transfers/{t.id}/failure", "failure"),
                    "failed-funding-source": link(
                        request, f"/funding-sources/{t.customer_funding_source_id}", "funding-source"
                    ),
                    "customer": link(request, f"/customers/{t.customer_dwolla_id}", "customer"),
                },
                "code": t.failure_code,
                "description": t.failure_description,
                "explanation": t.failure_explanation,
            }
        )

    def find_funding_source(fs_id: str) -> FundingSource | None:
        return world.funding_sources.get(fs_id.lower()) if _UUID.match(fs_id) else None

    @app.get("/funding-sources/{fs_id}")
    async def get_funding_source(fs_id: str, request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        fs = find_funding_source(fs_id)
        if fs is None:
            return not_found()
        return HalResponse(render_funding_source(request, fs))

    @app.get("/funding-sources/{fs_id}/balance")
    async def funding_source_balance(fs_id: str, request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        fs = find_funding_source(fs_id)
        if fs is None or fs.type != "balance" or fs.balance is None:
            return not_found()
        amount = {"value": f"{fs.balance:.2f}", "currency": "USD"}
        return HalResponse(
            {
                "_links": {
                    "self": link(request, f"/funding-sources/{fs.id}/balance", "balance"),
                    "funding-source": link(request, f"/funding-sources/{fs.id}", "funding-source"),
                },
                "balance": amount,
                "total": amount,
                "lastUpdated": dwolla_datetime(world.now),
            }
        )

    # -- webhook subscriptions and events
    def render_subscription(request: Request, sub: Subscription) -> dict[str, Any]:
        path = f"/webhook-subscriptions/{sub.id}"
        return {
            "_links": {
                "self": link(request, path, "webhook-subscription"),
                "webhooks": link(request, f"{path}/webhooks", "webhook"),
            },
            "id": sub.id,
            "url": sub.url,
            "paused": sub.paused,
            "created": dwolla_datetime(sub.created),
        }

    async def json_object(request: Request) -> dict[str, Any] | None:
        try:
            body = json.loads(await request.body() or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        return body if isinstance(body, dict) else None

    def bad_request() -> HalResponse:
        return err(400, "BadRequest", "The request body contains bad syntax or is incomplete.")

    @app.post("/webhook-subscriptions")
    async def create_subscription(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        body = await json_object(request)
        if body is None:
            return bad_request()
        url, secret = body.get("url"), body.get("secret")
        problems = []
        if not url:
            problems.append(("Required", "Url is required.", "/url"))
        elif not isinstance(url, str) or not _is_web_url(url):
            problems.append(("InvalidFormat", "Url must be a valid url.", "/url"))
        if not secret:
            problems.append(("Required", "Secret is required.", "/secret"))
        elif not isinstance(secret, str) or len(secret) > SECRET_MAX:
            problems.append(("InvalidFormat", f"Secret must be {SECRET_MAX} or fewer characters.", "/secret"))
        if problems:
            return validation_error(*problems)
        if hub.active_count() >= MAX_SUBSCRIPTIONS:
            return err(400, "MaxNumberOfResources", "The maximum number of subscriptions has been reached.")
        sub = hub.subscribe(str(url), str(secret))
        location = f"{base(request)}/webhook-subscriptions/{sub.id}"
        return Response(status_code=201, headers={"Location": location})

    @app.get("/webhook-subscriptions")
    async def list_subscriptions(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        subs = sorted(hub.subscriptions.values(), key=lambda s: s.created, reverse=True)
        return HalResponse(
            {
                "_links": {"self": link(request, "/webhook-subscriptions", "webhook-subscription")},
                "_embedded": {"webhook-subscriptions": [render_subscription(request, s) for s in subs]},
                "total": len(subs),
            }
        )

    @app.get("/webhook-subscriptions/{subscription_id}")
    async def get_subscription(subscription_id: str, request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        sub = hub.subscriptions.get(subscription_id.lower())
        return HalResponse(render_subscription(request, sub)) if sub else not_found()

    @app.post("/webhook-subscriptions/{subscription_id}")
    async def pause_subscription(subscription_id: str, request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        sub = hub.subscriptions.get(subscription_id.lower())
        if sub is None:
            return not_found()
        body = await json_object(request)
        if body is None or not isinstance(body.get("paused"), bool):
            return bad_request()
        sub.paused = body["paused"]
        if not sub.paused:
            sub.consecutive_failures = 0
        return HalResponse(render_subscription(request, sub))

    @app.delete("/webhook-subscriptions/{subscription_id}")
    async def delete_subscription(subscription_id: str, request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        sub = hub.subscriptions.pop(subscription_id.lower(), None)
        return HalResponse(render_subscription(request, sub)) if sub else not_found()

    def render_webhook(request: Request, d: Delivery) -> dict[str, Any]:
        """One delivery as Dwolla's webhook log shows it: each attempt's request and response."""
        attempts = []
        for attempt in d.attempts:
            sent: dict[str, Any] = {
                "timestamp": dwolla_datetime(attempt.at),
                "url": d.url,
                "headers": [{"name": k, "value": v} for k, v in d.headers.items()],
                "body": d.body,
            }
            item: dict[str, Any] = {"id": attempt.id, "request": sent}
            if attempt.status is not None:
                answered = attempt.at + timedelta(seconds=attempt.seconds)
                item["response"] = {
                    "timestamp": dwolla_datetime(answered),
                    "headers": [],
                    "statusCode": attempt.status,
                    "body": attempt.response_body,
                }
            attempts.append(item)
        return {
            "_links": {
                "self": link(request, f"/webhooks/{d.id}", "webhook"),
                "subscription": link(
                    request, f"/webhook-subscriptions/{d.subscription_id}", "webhook-subscription"
                ),
                "retry": link(request, f"/webhooks/{d.id}/retries", "retry"),
                "event": link(request, f"/events/{d.event_id}", "event"),
            },
            "id": d.id,
            "topic": d.topic,
            "accountId": ACCOUNT_ID,
            "eventId": d.event_id,
            "subscriptionId": d.subscription_id,
            "attempts": attempts,
        }

    @app.get("/webhook-subscriptions/{subscription_id}/webhooks")
    async def list_webhooks(subscription_id: str, request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        sub = hub.subscriptions.get(subscription_id.lower())
        if sub is None:
            return not_found()
        paged = limit_offset(request)
        if isinstance(paged, HalResponse):
            return paged
        limit, offset = paged
        mine = [d for d in reversed(hub.deliveries) if d.subscription_id == sub.id]  # newest first
        path = f"/webhook-subscriptions/{sub.id}/webhooks"
        return HalResponse(
            {
                "_links": {"self": link(request, path, "webhook")},
                "_embedded": {
                    "webhooks": [render_webhook(request, d) for d in mine[offset : offset + limit]]
                },
                "total": len(mine),
            }
        )

    def render_event(request: Request, event: Event) -> dict[str, Any]:
        body = event.body()
        body.pop("timestamp")  # the API's event resource has `created` only; the webhook body has both
        return body

    @app.get("/events")
    async def list_events(request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        paged = limit_offset(request)
        if isinstance(paged, HalResponse):
            return paged
        limit, offset = paged
        return HalResponse(
            {
                "_links": paging(request, "/events", {}, limit, offset, len(hub.events), "event"),
                "_embedded": {
                    "events": [render_event(request, e) for e in hub.events[offset : offset + limit]]
                },
                "total": len(hub.events),
            }
        )

    @app.get("/events/{event_id}")
    async def get_event(event_id: str, request: Request) -> Response:
        if (denied := guard(request)) is not None:
            return denied
        event = hub.event(event_id.lower())
        return HalResponse(render_event(request, event)) if event else not_found()

    # -- the sandbox's own controls: make a transfer fail (Dwolla's sandbox has "R01" etc. in its
    # funding-source names for this), and see the deliveries of its webhooks.
    @app.post(f"{ADMIN_PREFIX}/transfer-failures", include_in_schema=False)
    async def fail_transfer(request: Request) -> Response:
        body = await json_object(request) or {}
        code = str(body.get("code") or "R01")
        topic = str(body.get("topic") or FAILURE_TOPICS[0])
        if code not in ACH_RETURNS or topic not in FAILURE_TOPICS:
            return JSONResponse({"error": f"code must be one of {sorted(ACH_RETURNS)}, topic one of "
                                          f"{list(FAILURE_TOPICS)}"}, 400)  # fmt: skip
        if body.get("transferId"):
            existing = find_transfer(str(body["transferId"]))
            if existing is None:
                return JSONResponse({"error": "no such transfer"}, 404)
            failed = dataclasses.replace(existing, status="failed", failure_code=code)
        else:
            customer = find_customer(str(body.get("customerId") or ""))
            banks = [fs for fs in (customer.funding_sources if customer else []) if fs.type == "bank"]
            bank = next((fs for fs in banks if not fs.removed), None)
            if customer is None or bank is None:
                return JSONResponse({"error": "customerId must name a customer with a bank account"}, 404)
            try:
                amount = Decimal(str(body.get("amount") or "225.00")).quantize(Decimal("0.01"))
            except InvalidOperation:
                return JSONResponse({"error": "amount must be a number"}, 400)
            failed = Transfer(
                id=str(uuid.uuid4()), customer_dwolla_id=bank.customer_dwolla_id, direction="debit",
                status="failed", amount=amount, created=datetime.now(UTC), customer_funding_source_id=bank.id,
                correlation_id=str(uuid.uuid4()), failure_code=code,
            )  # fmt: skip
            added.setdefault(failed.customer_dwolla_id, []).insert(0, failed)
        overlay[failed.id] = failed
        event_id = str(uuid.uuid4())
        event = hub.publish(
            event_id,
            topic,
            failed.id,
            {
                "self": link(request, f"/events/{event_id}", "event"),
                "account": link(request, f"/accounts/{ACCOUNT_ID}", "account"),
                "resource": link(request, f"/transfers/{failed.id}", "transfer"),
                "customer": link(request, f"/customers/{failed.customer_dwolla_id}", "customer"),
            },
        )
        sent = sum(1 for d in hub.deliveries if d.event_id == event.id)
        return JSONResponse({"transferId": failed.id, "eventId": event.id, "deliveries": sent}, 201)

    @app.get(f"{ADMIN_PREFIX}/webhook-deliveries", include_in_schema=False)
    async def webhook_deliveries() -> dict[str, Any]:
        return {"deliveries": [d.as_dict() for d in hub.deliveries]}

    @app.post(f"{ADMIN_PREFIX}/expire-tokens", include_in_schema=False)
    async def expire_tokens() -> dict[str, int]:
        return {"expired": tokens.expire_all()}

    @app.exception_handler(404)
    async def unknown_path(request: Request, exc: Exception) -> Response:
        return not_found()

    @app.exception_handler(405)
    async def wrong_method(request: Request, exc: Exception) -> Response:
        return err(405, "MethodNotAllowed", "Method not allowed.")

    wrap(app, control, _error_body, b'{"_links":{"self":{"href":"', HAL)
    app.state.tokens = tokens
    app.state.webhooks = hub
    return app


def _is_web_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.hostname) and len(value) <= 2048


def _matches_search(c: Customer, search: str) -> bool:
    fields = [
        c.dwolla_first_name or "",
        c.dwolla_last_name or "",
        c.dwolla_email or "",
        c.dwolla_business_name or "",
    ]
    haystack = " ".join(fields).lower()
    full_name = f"{c.dwolla_first_name} {c.dwolla_last_name}".lower()
    return search in haystack or search in full_name or all(term in haystack for term in search.split())


def _decimal(raw: str | None, path: str, problems: list[tuple[str, str, str]]) -> Decimal | None:
    if raw in (None, ""):
        return None
    try:
        return Decimal(raw)
    except InvalidOperation:
        problems.append(("InvalidFormat", f"{path.strip('/')} must be a number.", path))
        return None


def _date(raw: str | None, path: str, problems: list[tuple[str, str, str]]) -> date | None:
    if raw in (None, ""):
        return None
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        problems.append(("InvalidFormat", f"{path.strip('/')} must be a date (YYYY-MM-DD).", path))
        return None
