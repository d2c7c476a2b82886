"""The one rule of what a viewer may see (web/viewer.py), for each kind of field and each way an
answer is serialised: pydantic models, JSON built as dicts, templates."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Annotated, Any

import pytest
from jinja2 import Environment
from pydantic import BaseModel

from supportlens.web.viewer import Pii, context, dump, is_viewer, mask_json, pii_filter

EMAIL = "jane.doe@acme.io"
PHONE = "+1 415 555 2671"
TEXT = "paid by jane.doe@acme.io, card 4111 1111 1111 1111, call +1 415 555 2671"
SECRET = "https://clarity.example/r/1"


def principal(role: str) -> Any:
    return SimpleNamespace(agent=SimpleNamespace(role=role))


VIEWER, AGENT, ADMIN = principal("viewer"), principal("agent"), principal("admin")

SHOWN_TO_VIEWERS = {
    Pii.email: (EMAIL, "j***@acme.io"),
    Pii.phone: (PHONE, "*********71"),
    Pii.text: (TEXT, "paid by [email], card [card], call [phone]"),
    Pii.withheld: (SECRET, None),
}


def test_every_kind_has_its_rule() -> None:
    assert set(SHOWN_TO_VIEWERS) == set(Pii)
    for kind, (value, shown) in SHOWN_TO_VIEWERS.items():
        assert kind.shown(value) == shown, kind
        assert kind.for_viewer(value, viewer=False) == value, kind
        assert kind.shown([value, value]) == ([shown, shown] if kind is not Pii.withheld else None)
    # Nothing to mask stays as it is: no value, no text.
    assert [Pii.email.shown(v) for v in (None, "", 42)] == [None, "", 42]


def test_only_the_viewer_role_is_a_viewer() -> None:
    assert is_viewer(VIEWER) and is_viewer(
        SimpleNamespace(agent=SimpleNamespace(role=SimpleNamespace(value="viewer")))
    )
    assert not any(is_viewer(p) for p in (AGENT, ADMIN, None))


class Inner(BaseModel):
    email: Annotated[str | None, Pii.email.field] = None


class Answer(BaseModel):
    email: Annotated[str, Pii.email.field]
    phone: Annotated[str | None, Pii.phone.field] = None
    note: Annotated[str | None, Pii.text.field] = None
    recording: Annotated[str | None, Pii.withheld.field] = None
    plain: str = ""
    inner: Inner
    many: list[Inner]


def test_marked_model_fields_are_masked_for_viewers_only() -> None:
    answer = Answer(
        email=EMAIL, phone=PHONE, note=TEXT, recording=SECRET, plain=EMAIL, inner=Inner(email=EMAIL),
        many=[Inner(email=EMAIL), Inner()],
    )  # fmt: skip
    seen = dump(answer, VIEWER)
    assert seen == {
        "email": "j***@acme.io",
        "phone": "*********71",
        "note": "paid by [email], card [card], call [phone]",
        "recording": None,
        "plain": EMAIL,  # an unmarked field is not the rule's business
        "inner": {"email": "j***@acme.io"},
        "many": [{"email": "j***@acme.io"}, {"email": None}],
    }
    assert dump(answer, AGENT) == answer.model_dump(mode="json") == dump(answer, None)
    assert answer.model_dump(mode="json")["email"] == EMAIL  # without a context: whole
    assert context(VIEWER) == {"viewer": True} and context(ADMIN) == {"viewer": False}


def test_sessions_api_shapes_mark_their_pii() -> None:
    from supportlens.sessions.schemas import SessionDetail

    fields = SessionDetail.model_fields
    marked = {
        name for name, f in fields.items() if any(isinstance(m, type(Pii.email.field)) for m in f.metadata)
    }
    assert marked == {"customer_email", "client_ip", "recording_url"}
    mapping_fields = fields["mapping"].annotation.model_fields  # type: ignore[union-attr]
    assert mapping_fields["customer_email"].metadata == [Pii.email.field]


def test_json_fields_are_masked_at_any_depth_by_their_key() -> None:
    def inconsistent(record: Any) -> Pii | None:
        return Pii.email if record.get("field") == "email" else None

    fields = {"email": Pii.email, "phone": Pii.phone, "url": Pii.text, "link": Pii.withheld,
              "hubspot": inconsistent}  # fmt: skip
    body = {
        "email": EMAIL,
        "items": [{"email": [EMAIL], "phone": PHONE, "url": TEXT, "link": {"href": SECRET}, "n": 3}],
        "issues": [{"field": "email", "hubspot": EMAIL}, {"field": "name", "hubspot": "Jane Doe"}],
        "hubspot": {"email": EMAIL},
    }
    assert mask_json(body, fields, viewer=False) is body
    assert mask_json(body, fields, viewer=True) == {
        "email": "j***@acme.io",
        "items": [
            {"email": ["j***@acme.io"], "phone": "*********71",
             "url": "paid by [email], card [card], call [phone]", "link": None, "n": 3}
        ],
        "issues": [{"field": "email", "hubspot": "j***@acme.io"}, {"field": "name", "hubspot": "Jane Doe"}],
        "hubspot": {"email": "j***@acme.io"},
    }  # fmt: skip
    assert body["email"] == EMAIL  # the answer itself is not changed


@pytest.mark.parametrize(
    "who, shown", [(VIEWER, "j***@acme.io / *********71"), (AGENT, f"{EMAIL} / {PHONE}")]
)
def test_templates_use_the_same_rule(who: Any, shown: str) -> None:
    env = Environment(autoescape=True)
    env.filters["pii"] = pii_filter
    page = env.from_string('{{ email | pii("email") }} / {{ phone | pii("phone") }}{{ none | pii("text") }}')
    assert page.render(principal=who, email=EMAIL, phone=PHONE, none=None) == shown
