"""Validate Dwolla simulator responses against the schemas of Dwolla's official OpenAPI spec.

The spec (MIT, see contracts/LICENSE) is resolved as one JSON Schema 2020-12 resource, so its local
`#/components/...` references work; each response body is validated against the schema the spec
gives for (path template, method, status, media type). Error statuses an operation does not document
are checked against the spec's shared error schemas.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SPEC_PATH = Path(__file__).parent / "contracts" / "dwolla-openapi.yml"
BASE = "urn:dwolla-openapi"
HAL = "application/vnd.dwolla.v1.hal+json"
# Error statuses most operations do not list: Dwolla's shared error schemas ({code, message}).
GENERIC_ERRORS = {
    400: "components/schemas/ValidationErrorSchema",
    401: "paths/~1/get/responses/401/content/application~1vnd.dwolla.v1.hal+json/schema",
    403: "components/schemas/ForbiddenError",
    404: "components/schemas/NotFoundError",
    405: "components/schemas/NotFoundError",
    406: "components/schemas/NotFoundError",
    429: "components/schemas/TooManyRequestsError",
    500: "components/schemas/NotFoundError",
    503: "components/schemas/NotFoundError",
}


@cache
def spec() -> dict[str, Any]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with SPEC_PATH.open() as fh:
        data: dict[str, Any] = yaml.load(fh, Loader=loader)
    return data


@cache
def registry() -> Registry:
    return Registry().with_resource(BASE, Resource.from_contents(spec(), default_specification=DRAFT202012))


def _pointer(*parts: str) -> str:
    return "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


@cache
def _templates() -> list[tuple[re.Pattern[str], str]]:
    out = []
    for template in spec()["paths"]:
        regex = "^" + re.sub(r"\{[^/]+\}", "[^/]+", template) + "$"
        out.append((re.compile(regex), template))
    # Literal paths before templated ones (/customers before /customers/{id}).
    out.sort(key=lambda item: item[1].count("{"))
    return out


def template_for(path: str) -> str:
    for regex, template in _templates():
        if regex.match(path):
            return template
    raise AssertionError(f"{path} is not a path of the Dwolla API")


@cache
def _validator(ref: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": ref}, registry=registry(), format_checker=FormatChecker())


def schema_ref(method: str, path: str, status: int, content_type: str) -> str:
    template = template_for(path)
    operation = spec()["paths"][template].get(method.lower())
    assert operation is not None, f"{method} {template} is not in the spec"
    responses = operation["responses"]
    media = content_type.split(";")[0].strip()
    if str(status) in responses:
        content = responses[str(status)].get("content") or {}
        assert media in content, f"{method} {template} {status}: spec has {list(content)}, got {media}"
        where = ("paths", template, method.lower(), "responses", str(status), "content", media, "schema")
        return f"{BASE}#/" + _pointer(*where)
    assert status in GENERIC_ERRORS, f"{method} {template}: status {status} is not documented"
    assert media == HAL, f"error {status} answered as {media}"
    return f"{BASE}#/{GENERIC_ERRORS[status]}"


def _ambiguous_one_of(error: Any) -> bool:
    """The spec's `oneOf` of look-alike schemas (POST /webhook-subscriptions 400: InvalidUrlFormatError and
    SecretTooLongError are the same shape) matches every valid body more than once: read it as `anyOf`."""
    return bool(error.validator == "oneOf" and "is valid under each of" in error.message)


def validate(method: str, path: str, status: int, content_type: str, body: Any) -> None:
    """Raise AssertionError naming every mismatch between `body` and the spec's schema."""
    ref = schema_ref(method, path, status, content_type)
    errors = sorted(
        (e for e in _validator(ref).iter_errors(body) if not _ambiguous_one_of(e)),
        key=lambda e: list(e.absolute_path),
    )
    if errors:
        details = "\n".join(
            f"  at /{'/'.join(map(str, e.absolute_path))}: {e.message[:300]}" for e in errors[:10]
        )
        raise AssertionError(f"{method} {path} -> {status} does not match {ref}:\n{details}")


def validate_empty(method: str, path: str, status: int) -> None:
    """An answer without a body is right only where the spec documents that status without content
    (e.g. 201 Created with a Location header)."""
    operation = spec()["paths"][template_for(path)].get(method.lower())
    assert operation is not None, f"{method} {path} is not in the spec"
    response = operation["responses"].get(str(status))
    assert response is not None, f"{method} {path}: status {status} is not documented"
    assert not response.get("content"), f"{method} {path} -> {status} should have a body"


@dataclass
class Exchange:
    method: str
    path: str
    status: int
    content_type: str
    body: bytes


@dataclass
class Recorder:
    """ASGI middleware keeping every request/response pair that passes through it."""

    app: ASGIApp
    exchanges: list[Exchange] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/__sandbox"):
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = {"body": b""}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = message["status"]
                headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}
                state["content_type"] = headers.get("content-type", "")
            elif message["type"] == "http.response.body":
                state["body"] += message.get("body", b"")
                if not message.get("more_body"):
                    self.exchanges.append(
                        Exchange(
                            scope["method"],
                            scope["path"],
                            state["status"],
                            state["content_type"],
                            state["body"],
                        )
                    )
            await send(message)

        await self.app(scope, receive, capture)

    def validate_all(self) -> int:
        for ex in self.exchanges:
            if ex.body == b"":
                validate_empty(ex.method, ex.path, ex.status)
            else:
                validate(ex.method, ex.path, ex.status, ex.content_type, json.loads(ex.body))
        return len(self.exchanges)
