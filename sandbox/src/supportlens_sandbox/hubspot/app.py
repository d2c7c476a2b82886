"""HubSpot CRM simulator: the v3 objects, search and batch APIs, notes, v4 associations, owners and
account details.

Speaks HubSpot's wire format: `Authorization: Bearer <token>`, error bodies
`{status, message, correlationId, category}`, the secondly search limit (5 per second per token)
and the ten-secondly general limit with their RATE_LIMIT bodies, camelCase envelopes and every
property value as a string (or null when a requested property is empty).

Each token carries scopes, as a private app does: `HUBSPOT_TOKEN` has every scope, and
`HUBSPOT_READONLY_TOKEN` only the read scopes (and HubSpot's `tickets` scope, which covers reading and
writing tickets), so writing a note with it answers HubSpot's 403 `MISSING_SCOPES` body.
`DELETE /crm/v3/objects/{type}/{id}` archives an object (HubSpot's "delete"): reads of it answer 404
`OBJECT_NOT_FOUND` and its associations go with it. Associating with an object
that does not exist (or was archived) answers the same 404 here; HubSpot's own answer for that case is
not documented, so callers should treat any 4xx there as "not associated".
"""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from supportlens_sandbox.hubspot import search as search_engine
from supportlens_sandbox.hubspot.objects import (
    ALWAYS_IN_SEARCH,
    ASSOCIATION_PAIRS,
    ASSOCIATION_TYPES,
    DEFAULT_PROPERTIES,
    KNOWN_PROPERTIES,
    NOTE_BODY_MAX,
    NOTE_WRITABLE,
    OBJECT_TYPE_IDS,
    SINGULAR,
    HsObject,
    HubSpotData,
    build,
    canonical_type,
    hs_datetime,
)
from supportlens_sandbox.knobs import Knobs, SandboxControl, wrap
from supportlens_sandbox.world import World, demo_world

HUBSPOT_TOKEN = "pat-na1-5f0c0de0-demo-4000-8000-5up9041e25a1"  # noqa: S105 - the sandbox's own token
HUBSPOT_READONLY_TOKEN = "pat-na1-5f0c0de0-read-4000-8000-0n1yr3ad5a1"  # noqa: S105 - no write scopes
HUBSPOT_PORTAL_ID = 48_151_623  # the sandbox account's portal (hub) id
# The scope a private app needs to read or write each object type (notes follow their contacts).
READ_SCOPES = {
    "contacts": "crm.objects.contacts.read",
    "companies": "crm.objects.companies.read",
    "deals": "crm.objects.deals.read",
    "tickets": "tickets",
    "notes": "crm.objects.contacts.read",
}
WRITE_SCOPES = {
    "contacts": "crm.objects.contacts.write",
    "companies": "crm.objects.companies.write",
    "deals": "crm.objects.deals.write",
    "tickets": "tickets",
    "notes": "crm.objects.contacts.write",
}
OWNERS_SCOPE = "crm.objects.owners.read"
READ_ONLY_SCOPES = frozenset({*READ_SCOPES.values(), OWNERS_SCOPE})
ALL_SCOPES = frozenset({*READ_ONLY_SCOPES, *WRITE_SCOPES.values()})
SCOPES_MESSAGE = (
    "This app hasn't been granted all required scopes to make this call. Read more about required scopes "
    "here: https://developers.hubspot.com/scopes."
)
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


def missing_scopes(scope: str) -> JSONResponse:
    """HubSpot's 403 for a token without the scope a call needs."""
    return error(
        403,
        SCOPES_MESSAGE,
        "MISSING_SCOPES",
        errors=[
            {
                "message": "One or more of the following scopes are required.",
                "context": {"requiredGranularScopes": [scope]},
            }
        ],
        links={"scopes": "https://developers.hubspot.com/scopes"},
    )


def object_not_found(object_id: str) -> JSONResponse:
    return error(
        404,
        "Object not found.  objectId are usually numeric.",
        "OBJECT_NOT_FOUND",
        context={"id": [object_id]},
    )


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
    scopes: dict[str, frozenset[str]] | None = None,
    portal_id: int = HUBSPOT_PORTAL_ID,
) -> FastAPI:
    """A HubSpot simulator over `world` (default: `demo_world()`), controlled by `knobs`.

    `scopes` gives a token's scopes (default: every scope for each of `tokens`, read scopes only for
    `HUBSPOT_READONLY_TOKEN`, which is always accepted).
    """
    data: HubSpotData = build(world or demo_world())
    control = SandboxControl("hubspot", knobs)
    granted: dict[str, frozenset[str]] = {token: ALL_SCOPES for token in tokens}
    granted.setdefault(HUBSPOT_READONLY_TOKEN, READ_ONLY_SCOPES)
    granted.update(scopes or {})
    accepted = set(granted)
    note_ids = itertools.count(61_000_000_001)
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
        request: Request, object_type: str, *, general_limit: bool = True, write: bool = False
    ) -> tuple[str, str] | JSONResponse:
        """(token, object kind), or the answer for a refused caller, an unknown object type (400) or a
        token without the scope to read (or `write`) that type (403)."""
        token = admit(request, general_limit=general_limit)
        if isinstance(token, JSONResponse):
            return token
        kind = canonical_type(object_type)
        if kind is None:
            return error(400, f"Unable to infer object type from: {object_type}", "VALIDATION_ERROR")
        scope = (WRITE_SCOPES if write else READ_SCOPES)[kind]
        if scope not in granted[token]:
            return missing_scopes(scope)
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
            return object_not_found(object_id)
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
        if READ_SCOPES[kind] not in granted[token]:
            return missing_scopes(READ_SCOPES[kind])
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

    def note_properties(raw: Any, *, creating: bool) -> dict[str, str | None] | JSONResponse:
        """A note's writable properties from a create or update body, or HubSpot's 400 for bad ones."""
        if not isinstance(raw, dict) or not all(isinstance(v, str | int | None) for v in raw.values()):
            return error(
                400, "Invalid input JSON: 'properties' must be an object of strings.", "VALIDATION_ERROR"
            )
        unknown = sorted(set(raw) - NOTE_WRITABLE)
        if unknown:
            return error(
                400,
                f'Property values were not valid: [{{"isValid":false,"message":"Property \\"{unknown[0]}\\" '
                f'does not exist","error":"PROPERTY_DOESNT_EXIST","name":"{unknown[0]}"}}]',
                "VALIDATION_ERROR",
            )
        values = {k: None if v is None else str(v) for k, v in raw.items()}
        if creating and not values.get("hs_timestamp"):
            return error(
                400,
                'Property values were not valid: [{"isValid":false,"message":"hs_timestamp is required",'
                '"error":"REQUIRED_PROPERTY","name":"hs_timestamp"}]',
                "VALIDATION_ERROR",
            )
        if "hs_timestamp" in values:
            stamp = _parse_timestamp(values["hs_timestamp"])
            if stamp is None:
                return error(
                    400,
                    'Property values were not valid: [{"isValid":false,"message":"hs_timestamp must be a '
                    'Unix time in milliseconds or an ISO 8601 date-time","error":"INVALID_DATETIME",'
                    '"name":"hs_timestamp"}]',
                    "VALIDATION_ERROR",
                )
            values["hs_timestamp"] = hs_datetime(stamp)
        if len(values.get("hs_note_body") or "") > NOTE_BODY_MAX:
            return error(
                400,
                f'Property values were not valid: [{{"isValid":false,"message":"hs_note_body is longer than '
                f'{NOTE_BODY_MAX} characters","error":"INVALID_LENGTH","name":"hs_note_body"}}]',
                "VALIDATION_ERROR",
            )
        return values

    def association_inputs(raw: Any, kind: str) -> list[tuple[str, str]] | JSONResponse:
        """(to kind, to id) for each `{to: {id}, types: [{associationCategory, associationTypeId}]}`."""
        if raw is None:
            return []
        wanted: list[tuple[str, str]] = []
        if not isinstance(raw, list):
            return error(400, "Invalid input JSON: 'associations' must be a list.", "VALIDATION_ERROR")
        for item in raw:
            to = item.get("to") if isinstance(item, dict) else None
            types = item.get("types") if isinstance(item, dict) else None
            if not isinstance(to, dict) or "id" not in to or not isinstance(types, list) or not types:
                return error(
                    400, "Invalid input JSON: each association needs 'to.id' and 'types'.", "VALIDATION_ERROR"
                )
            for spec in types:
                pair = pair_of(spec, kind)
                if isinstance(pair, JSONResponse):
                    return pair
                wanted.append((pair[1], str(to["id"])))
        return wanted

    def pair_of(spec: Any, kind: str, to_kind: str | None = None) -> tuple[str, str] | JSONResponse:
        """The (from, to) pair a HUBSPOT_DEFINED association type id names, checked against the request."""
        category = spec.get("associationCategory") if isinstance(spec, dict) else None
        type_id = spec.get("associationTypeId") if isinstance(spec, dict) else None
        if category != "HUBSPOT_DEFINED" or not isinstance(type_id, int):
            return error(
                400,
                "Invalid input JSON: associationCategory must be HUBSPOT_DEFINED (the sandbox has no custom "
                "labels) and associationTypeId an integer.",
                "VALIDATION_ERROR",
            )
        pair = ASSOCIATION_PAIRS.get(type_id)
        if pair is None or pair[0] != kind or (to_kind is not None and pair[1] != to_kind):
            return error(
                400,
                f"association type id {type_id} doesn't exist between {SINGULAR[kind]} and "
                f"{SINGULAR.get(to_kind or '', to_kind or 'that object')}",
                "VALIDATION_ERROR",
            )
        return pair

    def link_both_ways(obj: HsObject, to_kind: str, to_id: str) -> None:
        obj.associate(to_kind, to_id)
        data.objects[to_kind][to_id].associate(obj.type, obj.id)

    def render_full(obj: HsObject) -> dict[str, Any]:
        """A created or updated object: every property it has a value for."""
        return _render(obj, [name for name, value in obj.properties.items() if value is not None])

    @app.post("/crm/v3/objects/{object_type}")
    async def create_object(object_type: str, request: Request) -> Response:
        admitted = admit_object(request, object_type, write=True)
        if isinstance(admitted, JSONResponse):
            return admitted
        token, kind = admitted
        if kind != "notes":
            return error(400, f"The sandbox creates notes only, not {kind}.", "VALIDATION_ERROR")
        try:
            payload = await json_body(request)
        except search_engine.SearchError as exc:
            return error(400, str(exc), "VALIDATION_ERROR")
        if not isinstance(payload, dict):
            return error(400, "Invalid input JSON: expected an object.", "VALIDATION_ERROR")
        properties = note_properties(payload.get("properties"), creating=True)
        if isinstance(properties, JSONResponse):
            return properties
        wanted = association_inputs(payload.get("associations"), kind)
        if isinstance(wanted, JSONResponse):
            return wanted
        missing = [to_id for to_kind, to_id in wanted if to_id not in data.objects[to_kind]]
        if missing:  # nothing is created when one association cannot be made
            return object_not_found(missing[0])
        now = datetime.now(UTC)
        note_id = str(next(note_ids))
        stamps = {"hs_createdate": hs_datetime(now), "hs_lastmodifieddate": hs_datetime(now)}
        note = HsObject(kind, note_id, {**properties, **stamps, "hs_object_id": note_id}, now, now)
        data.objects[kind][note_id] = note
        for to_kind, to_id in wanted:
            link_both_ways(note, to_kind, to_id)
        return with_limit_headers(JSONResponse(render_full(note), status_code=201), token)

    @app.patch("/crm/v3/objects/{object_type}/{object_id}")
    async def update_object(object_type: str, object_id: str, request: Request) -> Response:
        admitted = admit_object(request, object_type, write=True)
        if isinstance(admitted, JSONResponse):
            return admitted
        token, kind = admitted
        obj = data.objects[kind].get(object_id)
        if obj is None:
            return object_not_found(object_id)
        if kind != "notes":
            return error(400, f"The sandbox updates notes only, not {kind}.", "VALIDATION_ERROR")
        try:
            payload = await json_body(request)
        except search_engine.SearchError as exc:
            return error(400, str(exc), "VALIDATION_ERROR")
        properties = note_properties(payload.get("properties") if isinstance(payload, dict) else None,
                                     creating=False)  # fmt: skip
        if isinstance(properties, JSONResponse):
            return properties
        obj.updated = datetime.now(UTC)
        obj.properties.update(properties, hs_lastmodifieddate=hs_datetime(obj.updated))
        return with_limit_headers(JSONResponse(render_full(obj)), token)

    @app.delete("/crm/v3/objects/{object_type}/{object_id}")
    async def archive_object(object_type: str, object_id: str, request: Request) -> Response:
        admitted = admit_object(request, object_type, write=True)
        if isinstance(admitted, JSONResponse):
            return admitted
        _, kind = admitted
        data.archive(kind, object_id)  # HubSpot answers 204 whether or not it existed
        return Response(status_code=204)

    def admit_association(
        request: Request, object_type: str, object_id: str, to_object_type: str, to_object_id: str
    ) -> tuple[str, HsObject, str] | JSONResponse:
        """(token, from object, to kind) for an association write, or HubSpot's refusal."""
        admitted = admit_object(request, object_type, write=True)
        if isinstance(admitted, JSONResponse):
            return admitted
        token, kind = admitted
        to_kind = canonical_type(to_object_type)
        if to_kind is None:
            return error(400, f"Unable to infer object type from: {to_object_type}", "VALIDATION_ERROR")
        if (kind, to_kind) not in ASSOCIATION_TYPES:
            return error(
                400,
                f"No association is defined from {SINGULAR[kind]} to {SINGULAR[to_kind]}.",
                "VALIDATION_ERROR",
            )
        obj = data.objects[kind].get(object_id)
        if obj is None:
            return object_not_found(object_id)
        if to_object_id not in data.objects[to_kind]:
            return object_not_found(to_object_id)
        return token, obj, to_kind

    @app.put("/crm/v4/objects/{object_type}/{object_id}/associations/default/{to_object_type}/{to_object_id}")
    async def associate_default(
        object_type: str, object_id: str, to_object_type: str, to_object_id: str, request: Request
    ) -> Response:
        admitted = admit_association(request, object_type, object_id, to_object_type, to_object_id)
        if isinstance(admitted, JSONResponse):
            return admitted
        token, obj, to_kind = admitted
        started = datetime.now(UTC)
        link_both_ways(obj, to_kind, to_object_id)
        results = [
            {
                "from": {"id": from_id},
                "to": {"id": to_id},
                "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id},
            }
            for from_kind, from_id, other_kind, to_id in (
                (obj.type, obj.id, to_kind, to_object_id),
                (to_kind, to_object_id, obj.type, obj.id),
            )
            for type_id, _ in ASSOCIATION_TYPES[(from_kind, other_kind)]
        ]
        body = {
            "status": "COMPLETE",
            "results": results,
            "startedAt": hs_datetime(started),
            "completedAt": hs_datetime(datetime.now(UTC)),
        }
        return with_limit_headers(JSONResponse(body), token)

    @app.put("/crm/v4/objects/{object_type}/{object_id}/associations/{to_object_type}/{to_object_id}")
    async def associate_labelled(
        object_type: str, object_id: str, to_object_type: str, to_object_id: str, request: Request
    ) -> Response:
        admitted = admit_association(request, object_type, object_id, to_object_type, to_object_id)
        if isinstance(admitted, JSONResponse):
            return admitted
        token, obj, to_kind = admitted
        try:
            specs = await json_body(request)
        except search_engine.SearchError as exc:
            return error(400, str(exc), "VALIDATION_ERROR")
        if not isinstance(specs, list) or not specs:
            return error(400, "Invalid input JSON: expected a list of association types.", "VALIDATION_ERROR")
        for spec in specs:
            pair = pair_of(spec, obj.type, to_kind)
            if isinstance(pair, JSONResponse):
                return pair
        link_both_ways(obj, to_kind, to_object_id)
        body = {
            "fromObjectTypeId": OBJECT_TYPE_IDS[obj.type],
            "fromObjectId": int(obj.id),
            "toObjectTypeId": OBJECT_TYPE_IDS[to_kind],
            "toObjectId": int(to_object_id),
            "labels": [],
        }
        return with_limit_headers(JSONResponse(body, status_code=201), token)

    @app.get("/account-info/v3/details")
    async def account_details(request: Request) -> Response:
        token = admit(request)
        if isinstance(token, JSONResponse):
            return token
        body = {
            "portalId": portal_id,
            "accountType": "STANDARD",
            "timeZone": "US/Eastern",
            "companyCurrency": "USD",
            "additionalCurrencies": [],
            "utcOffset": "-05:00",
            "utcOffsetMilliseconds": -18_000_000,
            "uiDomain": "app.hubspot.com",
            "dataHostingLocation": "na1",
        }
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
        if OWNERS_SCOPE not in granted[token]:
            return missing_scopes(OWNERS_SCOPE)
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


def _parse_timestamp(value: str | None) -> datetime | None:
    """`hs_timestamp` as HubSpot accepts it: Unix milliseconds or an ISO 8601 date-time."""
    if not value:
        return None
    try:
        if value.isdigit():
            return datetime.fromtimestamp(int(value) / 1000, UTC)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
