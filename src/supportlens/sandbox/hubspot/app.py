"""HubSpot CRM simulator: the v3 objects, search and batch APIs, v4 associations and owners.

Speaks HubSpot's wire format: `Authorization: Bearer <token>`, error bodies
`{status, message, correlationId, category}`, the secondly search limit (5 per second per token)
and the ten-secondly general limit with their RATE_LIMIT bodies, camelCase envelopes and every
property value as a string (or null when a requested property is empty).
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from supportlens.sandbox.hubspot import search as search_engine
from supportlens.sandbox.hubspot.objects import (
    ALWAYS_IN_SEARCH,
    ASSOCIATION_TYPES,
    DEFAULT_PROPERTIES,
    KNOWN_PROPERTIES,
    SINGULAR,
    HsObject,
    HubSpotData,
    build,
    canonical_type,
    hs_datetime,
)
from supportlens.sandbox.knobs import Knobs, SandboxControl, wrap
from supportlens.sandbox.world import World, demo_world

HUBSPOT_TOKEN = "pat-na1-5f0c0de0-demo-4000-8000-5up9041e25a1"  # noqa: S105 - the sandbox's own token
BATCH_MAX = 100
LIST_MAX_LIMIT = 100
V4_MAX_LIMIT = 500

AUTH_MESSAGE = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find "
    "more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)


def _correlation_id() -> str:
    return str(uuid.uuid4())


def error(status: int, message: str, category: str, **extra: Any) -> JSONResponse:
    body = {"status": "error", "message": message, "correlationId": _correlation_id(), "category": category}
    body.update(extra)
    return JSONResponse(body, status_code=status)


def rate_limited(policy: str) -> JSONResponse:
    message = {
        "SECONDLY": "You have reached your secondly limit.",
        "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
    }[policy]
    body = {
        "status": "error",
        "message": message,
        "errorType": "RATE_LIMIT",
        "correlationId": _correlation_id(),
        "policyName": policy,
    }
    return JSONResponse(body, status_code=429)


def _error_body(status: int) -> tuple[bytes, str]:
    if status == 429:
        return bytes(rate_limited("TEN_SECONDLY_ROLLING").body), "application/json;charset=utf-8"
    if status in (502, 503, 504):
        # HubSpot's edge answers gateway errors with an HTML page.
        html = f"<html><head><title>{status}</title></head><body><h1>{status} Service Unavailable</h1>"
        html += "</body></html>"
        return html.encode(), "text/html"
    body = {
        "status": "error",
        "message": "internal error",
        "correlationId": _correlation_id(),
        "category": "INTERNAL_ERROR",
    }
    return json.dumps(body).encode(), "application/json;charset=utf-8"


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def _render(obj: HsObject, properties: list[str] | None, always: tuple[str, ...] = ()) -> dict[str, Any]:
    wanted = list(properties) if properties else list(DEFAULT_PROPERTIES[obj.type])
    names = [p for p in dict.fromkeys([*always, *wanted]) if p in KNOWN_PROPERTIES[obj.type]]
    return {
        "id": obj.id,
        "properties": {name: obj.properties.get(name) for name in sorted(names)},
        "createdAt": hs_datetime(obj.created),
        "updatedAt": hs_datetime(obj.updated),
        "archived": obj.archived,
    }


def _split_params(values: list[str]) -> list[str]:
    out: list[str] = []
    for value in values:
        out.extend(part.strip() for part in value.split(",") if part.strip())
    return out


def create_hubspot_app(
    world: World | None = None,
    knobs: Knobs | None = None,
    *,
    tokens: tuple[str, ...] = (HUBSPOT_TOKEN,),
) -> FastAPI:
    """A HubSpot simulator over `world` (default: `demo_world()`), controlled by `knobs`."""
    data: HubSpotData = build(world or demo_world())
    control = SandboxControl("hubspot", knobs)
    accepted = set(tokens)
    app = FastAPI(title="HubSpot CRM sandbox", openapi_url=None, docs_url=None, redoc_url=None)

    def admit(request: Request, *, general_limit: bool = True) -> str | JSONResponse:
        """The caller's token, or HubSpot's answer when it is refused (401) or over the 10 s limit (429).

        Search has a limit of its own instead of the general one (see `search`).
        """
        token = _token(request)
        if token is None or token not in accepted:
            return error(401, AUTH_MESSAGE, "INVALID_AUTHENTICATION")
        if general_limit and not control.allow(f"general:{token}", control.knobs.general_per_10s, 10.0):
            control.count("rate_limited")
            return rate_limited("TEN_SECONDLY_ROLLING")
        return token

    def admit_object(
        request: Request, object_type: str, *, general_limit: bool = True
    ) -> tuple[str, str] | JSONResponse:
        """(token, object kind), or the answer for a refused caller or an unknown object type (400)."""
        token = admit(request, general_limit=general_limit)
        if isinstance(token, JSONResponse):
            return token
        kind = canonical_type(object_type)
        if kind is None:
            return error(400, f"Unable to infer object type from: {object_type}", "VALIDATION_ERROR")
        return token, kind

    def with_limit_headers(response: JSONResponse, token: str) -> JSONResponse:
        limit = control.knobs.general_per_10s
        response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = "10000"
        response.headers["X-HubSpot-RateLimit-Max"] = str(limit)
        response.headers["X-HubSpot-RateLimit-Remaining"] = str(
            control.remaining(f"general:{token}", limit, 10.0)
        )
        return response

    async def json_body(request: Request) -> Any:
        raw = await request.body()
        try:
            return json.loads(raw or b"null")
        except json.JSONDecodeError as exc:
            raise search_engine.SearchError(
                f"Invalid input JSON on line {exc.lineno}, column {exc.colno}"
            ) from None

    @app.post("/crm/v3/objects/{object_type}/search")
    async def search(object_type: str, request: Request) -> Response:
        admitted = admit_object(request, object_type, general_limit=False)
        if isinstance(admitted, JSONResponse):
            return admitted
        token, kind = admitted
        if not control.allow(f"search:{token}", control.knobs.search_per_second, 1.0):
            control.count("rate_limited")
            return rate_limited("SECONDLY")
        control.record_search()
        try:
            parsed = search_engine.parse_request(kind, await json_body(request))
        except search_engine.SearchError as exc:
            return error(400, str(exc), "VALIDATION_ERROR")
        total, page = search_engine.run(list(data.objects[kind].values()), parsed)
        body: dict[str, Any] = {
            "total": total,
            "results": [_render(o, parsed.properties, ALWAYS_IN_SEARCH[kind]) for o in page],
        }
        next_after = parsed.after + parsed.limit
        if parsed.limit and next_after < min(total, search_engine.MAX_RESULTS):
            body["paging"] = {"next": {"after": str(next_after), "link": f"?after={next_after}"}}
        return JSONResponse(body)

    @app.get("/crm/v3/objects/{object_type}")
    async def list_objects(object_type: str, request: Request) -> Response:
        admitted = admit_object(request, object_type)
        if isinstance(admitted, JSONResponse):
            return admitted
        token, kind = admitted
        params = request.query_params
        try:
            limit = int(params.get("limit") or 10)
            after = int(params.get("after") or 0)
        except ValueError:
            return error(400, "limit and after must be integers.", "VALIDATION_ERROR")
        if not 1 <= limit <= LIST_MAX_LIMIT or after < 0:
            return error(400, f"limit must be between 1 and {LIST_MAX_LIMIT}.", "VALIDATION_ERROR")
        ordered = sorted(data.objects[kind].values(), key=lambda o: int(o.id))
        properties = _split_params(params.getlist("properties")) or None
        associations = _split_params(params.getlist("associations"))
        results = []
        for obj in ordered[after : after + limit]:
            item = _render(obj, properties)
            _add_associations(item, obj, associations)
            results.append(item)
        body: dict[str, Any] = {"results": results}
        if after + limit < len(ordered):
            body["paging"] = {"next": {"after": str(after + limit), "link": f"?after={after + limit}"}}
        return with_limit_headers(JSONResponse(body), token)

    @app.get("/crm/v3/objects/{object_type}/{object_id}")
    async def get_object(object_type: str, object_id: str, request: Request) -> Response:
        admitted = admit_object(request, object_type)
        if isinstance(admitted, JSONResponse):
            return admitted
        token, kind = admitted
        params = request.query_params
        id_property = params.get("idProperty")
        obj: HsObject | None = None
        if id_property:
            if id_property not in KNOWN_PROPERTIES[kind]:
                return error(400, f"Property '{id_property}' does not exist on {kind}.", "VALIDATION_ERROR")
            wanted = object_id.lower()
            obj = next(
                (
                    o
                    for o in data.objects[kind].values()
                    if str(o.properties.get(id_property) or "").lower() == wanted
                ),
                None,
            )
        else:
            obj = data.objects[kind].get(object_id)
        if obj is None:
            return error(
                404,
                "Object not found.  objectId are usually numeric.",
                "OBJECT_NOT_FOUND",
                context={"id": [object_id]},
            )
        body = _render(obj, _split_params(params.getlist("properties")) or None)
        _add_associations(body, obj, _split_params(params.getlist("associations")))
        return with_limit_headers(JSONResponse(body), token)

    @app.post("/crm/v3/objects/{object_type}/batch/read")
    async def batch_read(object_type: str, request: Request) -> Response:
        admitted = admit_object(request, object_type)
        if isinstance(admitted, JSONResponse):
            return admitted
        token, kind = admitted
        started = datetime.now(UTC)
        try:
            payload = await json_body(request)
        except search_engine.SearchError as exc:
            return error(400, str(exc), "VALIDATION_ERROR")
        inputs = payload.get("inputs") if isinstance(payload, dict) else None
        if not isinstance(inputs, list) or not all(isinstance(i, dict) and "id" in i for i in inputs):
            return error(
                400, "Invalid input JSON: 'inputs' must be a list of {\"id\": ...}.", "VALIDATION_ERROR"
            )
        if len(inputs) > BATCH_MAX:
            return error(400, f"Batch input cannot contain more than {BATCH_MAX} inputs.", "VALIDATION_ERROR")
        properties = payload.get("properties") or None
        id_property = payload.get("idProperty")
        results = []
        missing: list[str] = []
        for item in dict.fromkeys(str(i["id"]) for i in inputs):
            if id_property:
                obj = next(
                    (o for o in data.objects[kind].values()
                     if str(o.properties.get(id_property) or "").lower() == item.lower()),
                    None,
                )  # fmt: skip
            else:
                obj = data.objects[kind].get(item)
            if obj is None:
                missing.append(item)
            else:
                results.append(_render(obj, properties))
        body: dict[str, Any] = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": hs_datetime(started),
            "completedAt": hs_datetime(datetime.now(UTC)),
        }
        status = 200
        if missing:
            status = 207
            body["numErrors"] = 1
            body["errors"] = [
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": f"Could not get some {SINGULAR[kind].upper()} objects, they may be deleted "
                    "or not exist. Check that ids are valid.",
                    "context": {"ids": missing},
                }
            ]
        return with_limit_headers(JSONResponse(body, status_code=status), token)

    @app.get("/crm/v4/objects/{object_type}/{object_id}/associations/{to_object_type}")
    async def associations_v4(
        object_type: str, object_id: str, to_object_type: str, request: Request
    ) -> Response:
        token = admit(request)
        if isinstance(token, JSONResponse):
            return token
        kind, to_kind = canonical_type(object_type), canonical_type(to_object_type)
        if kind is None or to_kind is None:
            bad = object_type if kind is None else to_object_type
            return error(400, f"Unable to infer object type from: {bad}", "VALIDATION_ERROR")
        try:
            limit = int(request.query_params.get("limit", V4_MAX_LIMIT))
            after = int(request.query_params.get("after") or 0)
        except ValueError:
            return error(400, "limit and after must be integers.", "VALIDATION_ERROR")
        if limit < 1 or limit > V4_MAX_LIMIT:
            return error(400, f"limit must be between 1 and {V4_MAX_LIMIT}.", "VALIDATION_ERROR")
        obj = data.objects[kind].get(object_id)
        linked = obj.associations.get(to_kind, []) if obj else []
        page = linked[after : after + limit]
        body: dict[str, Any] = {
            "results": [
                {
                    "toObjectId": int(to_id),
                    "associationTypes": [
                        {"category": "HUBSPOT_DEFINED", "typeId": type_id, "label": label}
                        for type_id, label in types
                    ],
                }
                for to_id, types in page
            ]
        }
        if after + limit < len(linked):
            body["paging"] = {"next": {"after": str(after + limit), "link": f"?after={after + limit}"}}
        return with_limit_headers(JSONResponse(body), token)

    def render_owner(owner: Any) -> dict[str, Any]:
        return {
            "id": owner.id,
            "email": owner.email,
            "type": "PERSON",
            "firstName": owner.first_name,
            "lastName": owner.last_name,
            "userId": owner.user_id,
            "userIdIncludingInactive": owner.user_id,
            "createdAt": hs_datetime(owner.created),
            "updatedAt": hs_datetime(owner.created),
            "archived": False,
        }

    @app.get("/crm/v3/owners/")
    @app.get("/crm/v3/owners")
    async def list_owners(request: Request) -> Response:
        token = admit(request)
        if isinstance(token, JSONResponse):
            return token
        email = request.query_params.get("email")
        owners = [o for o in data.owners if not email or o.email.lower() == email.lower()]
        return with_limit_headers(JSONResponse({"results": [render_owner(o) for o in owners]}), token)

    @app.get("/crm/v3/owners/{owner_id}")
    async def get_owner(owner_id: str, request: Request) -> Response:
        token = admit(request)
        if isinstance(token, JSONResponse):
            return token
        owner = next((o for o in data.owners if o.id == owner_id), None)
        if owner is None:
            return error(404, f"Owner with id {owner_id} not found.", "OBJECT_NOT_FOUND")
        return with_limit_headers(JSONResponse(render_owner(owner)), token)

    @app.exception_handler(404)
    async def not_found(request: Request, exc: Exception) -> Response:
        return error(404, f"Unknown path: {request.url.path}", "OBJECT_NOT_FOUND")

    @app.exception_handler(405)
    async def not_allowed(request: Request, exc: Exception) -> Response:
        return error(405, f"Method {request.method} not allowed on {request.url.path}", "VALIDATION_ERROR")

    wrap(
        app,
        control,
        _error_body,
        b'{"total": 3, "results": [{"id": "101", "properties": {"email',
        "application/json",
    )
    app.state.data = data
    return app


# Pairs whose v3 association type names carry "_unlabeled" next to the primary one.
_LABELLED = {
    ("contacts", "companies"),
    ("companies", "contacts"),
    ("deals", "companies"),
    ("companies", "deals"),
    ("tickets", "companies"),
    ("companies", "tickets"),
}


def _add_associations(body: dict[str, Any], obj: HsObject, names: list[str]) -> None:
    """The v3 `associations` block: {companies: {results: [{id, type: contact_to_company...}]}}."""
    associations: dict[str, Any] = {}
    for to_name in names:
        to_kind = canonical_type(to_name)
        if to_kind is None or (obj.type, to_kind) not in ASSOCIATION_TYPES:
            continue
        results = []
        base = f"{SINGULAR[obj.type]}_to_{SINGULAR[to_kind]}"
        for to_id, types in obj.associations.get(to_kind, []):
            for _type_id, label in types:
                unlabeled = label != "Primary" and (obj.type, to_kind) in _LABELLED
                results.append({"id": to_id, "type": base + ("_unlabeled" if unlabeled else "")})
        if results:
            associations[to_name] = {"results": results}
    if associations:
        body["associations"] = associations
