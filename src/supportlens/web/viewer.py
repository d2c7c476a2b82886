"""What a viewer may see: the one rule, applied where answers are serialised.

Viewers (the read-only role) see sessions and customers with their PII masked; agents and admins see
it whole. Each field that can hold PII says which kind it holds, and this module alone decides what a
viewer sees of each kind:

- `Pii.email`: the first letter and the domain (j***@acme.io);
- `Pii.phone`: the last two digits;
- `Pii.text`: free text and URLs with every e-mail, phone and card number in them replaced;
- `Pii.withheld`: not shown at all (recording links, client addresses).

The kind is declared where the answer's shape is declared:

- pydantic response models mark fields `Annotated[str | None, Pii.email.field]`; `dump(model,
  principal)` (or `respond`) serialises with the principal in the serialisation context;
- JSON built as dicts (vendor answers, the journey) names its fields in a `Fields` map, applied by
  `mask_json`;
- templates use the `pii` filter (`{{ c.email | pii("email") }}`), which reads the page's principal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

from fastapi.responses import JSONResponse
from jinja2 import pass_context
from jinja2.runtime import Context
from pydantic import BaseModel, SerializationInfo, SerializerFunctionWrapHandler, WrapSerializer

from supportlens.masking import mask_email, mask_phone, mask_pii_text

VIEWER_ROLE = "viewer"
CONTEXT_KEY = "viewer"  # in a pydantic serialisation context: True when a viewer will read the answer


def is_viewer(principal: Any) -> bool:
    """The signed-in agent has the viewer role (None, a system caller, is not a viewer)."""
    role = getattr(getattr(principal, "agent", None), "role", None)
    return getattr(role, "value", role) == VIEWER_ROLE


def _withheld(_value: Any) -> None:
    return None


class Pii(Enum):
    email = "email"
    phone = "phone"
    text = "text"
    withheld = "withheld"

    def shown(self, value: Any) -> Any:
        """What a viewer sees of `value`: the one rule. Empty values and non-strings (ids, numbers, a
        list of strings is masked item by item) stay as they are, except that withheld is always None."""
        if self is Pii.withheld:
            return None
        if isinstance(value, list):
            return [self.shown(v) for v in value]
        if not isinstance(value, str) or not value:
            return value
        return _MASKS[self](value)

    def for_viewer(self, value: Any, viewer: bool) -> Any:
        return self.shown(value) if viewer else value

    @property
    def field(self) -> WrapSerializer:
        """The pydantic marker: `Annotated[str | None, Pii.email.field]`."""
        return _field_serializers[self]


_MASKS: dict[Pii, Callable[[str], Any]] = {
    Pii.email: mask_email,
    Pii.phone: mask_phone,
    Pii.text: mask_pii_text,
    Pii.withheld: _withheld,
}


def _serializer(kind: Pii) -> WrapSerializer:
    def serialize(value: Any, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        context = info.context
        if isinstance(context, Mapping) and context.get(CONTEXT_KEY):
            value = kind.shown(value)
        return handler(value)

    return WrapSerializer(serialize, when_used="always")


_field_serializers = {kind: _serializer(kind) for kind in Pii}


def context(principal: Any) -> dict[str, bool]:
    """The serialisation context for an answer `principal` will read."""
    return {CONTEXT_KEY: is_viewer(principal)}


def dump(model: BaseModel, principal: Any) -> dict[str, Any]:
    """The model as JSON-ready data (by alias), its PII fields masked when `principal` is a viewer."""
    return model.model_dump(mode="json", by_alias=True, context=context(principal))


def respond(model: BaseModel, principal: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(dump(model, principal), status_code=status_code)


# Fields of JSON built as dicts: the key of each field that can hold PII and its kind, or a function of
# the record holding the field when its kind depends on the record (an inconsistency's two values are
# e-mails when its `field` is "email"). A key applies at any depth; a list's items take their key's kind.
FieldKind = Pii | Callable[[Mapping[str, Any]], Pii | None]
Fields = Mapping[str, FieldKind]


def mask_json(value: Any, fields: Fields, viewer: bool) -> Any:
    """A copy of `value` with the fields named in `fields` masked, when `viewer`; else `value` itself."""
    if not viewer:
        return value
    return _mask_json(value, fields, None)


def _mask_json(value: Any, fields: Fields, kind: Pii | None) -> Any:
    if kind is Pii.withheld:
        return None
    if isinstance(value, dict):
        return {key: _mask_json(item, fields, _kind(fields.get(key), value)) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask_json(item, fields, kind) for item in value]
    return value if kind is None else kind.shown(value)


def _kind(declared: FieldKind | None, record: Mapping[str, Any]) -> Pii | None:
    if declared is None or isinstance(declared, Pii):
        return declared
    return declared(record)


@pass_context
def pii_filter(ctx: Context, value: Any, kind: str) -> Any:
    """Jinja: `{{ value | pii("email") }}`, masked when the page's principal is a viewer; "" for None."""
    if value is None:
        return ""
    return Pii(kind).for_viewer(value, is_viewer(ctx.get("principal")))
