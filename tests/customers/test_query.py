"""Query normalisation: trim, case, phone to E.164, kind detection, and the 400 for bad input."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supportlens.customers.query import MAX_QUERY_LENGTH, parse_query
from supportlens.problems import ProblemError


@pytest.mark.parametrize(
    ("raw", "kind", "email", "phone"),
    [
        ("  Jane@ACME.io ", "email", "jane@acme.io", None),
        ("jane.doe+billing@acme.co.uk", "email", "jane.doe+billing@acme.co.uk", None),
        ("+1 415-555-0101", "phone", None, "+14155550101"),
        ("(415) 555-0101", "phone", None, "+14155550101"),
        ("415.555.0101", "phone", None, "+14155550101"),
        ("4155550101", "phone", None, "+14155550101"),
        ("+44 20 7946 0958", "phone", None, "+442079460958"),
        ("Jane Doe", "name", None, None),
        ("  jane   doe ", "name", None, None),
        ("Chen", "name", None, None),
        ("Acme Inc", "company", None, None),
        ("Globex Corporation", "company", None, None),
        ("acme.io", "company", None, None),
        ("Smith & Sons", "company", None, None),
        ("12", "name", None, None),
    ],
)
def test_kinds_and_normal_forms(raw: str, kind: str, email: str | None, phone: str | None) -> None:
    q = parse_query(raw)
    assert q.kind == kind
    assert q.email == email
    assert q.phone_e164 == phone
    assert q.raw == raw
    assert q.text == " ".join(raw.split())


def test_normalized_key_is_the_same_for_the_same_meaning() -> None:
    assert parse_query("JANE@acme.io").normalized == parse_query(" jane@ACME.IO").normalized
    assert parse_query("(415) 555-0101").normalized == parse_query("+1 415 555 0101").normalized
    assert parse_query("Jane  DOE").normalized == parse_query("jane doe").normalized


@pytest.mark.parametrize("raw", ["", "   ", "\t\n"])
def test_empty_query_is_a_400_naming_q(raw: str) -> None:
    with pytest.raises(ProblemError) as info:
        parse_query(raw)
    assert info.value.status == 400 and info.value.field == "q"
    assert "empty" in (info.value.detail or "")


def test_over_long_query_is_a_400_naming_q() -> None:
    parse_query("a" * MAX_QUERY_LENGTH)
    with pytest.raises(ProblemError) as info:
        parse_query("a" * (MAX_QUERY_LENGTH + 1))
    assert info.value.status == 400 and info.value.field == "q"
    assert "200" in (info.value.detail or "")


@given(st.text(max_size=250))
def test_any_text_parses_or_is_rejected_cleanly(raw: str) -> None:
    try:
        q = parse_query(raw)
    except ProblemError as exc:
        assert exc.status == 400 and exc.field == "q"
        return
    assert q.text and len(q.text) <= MAX_QUERY_LENGTH
    assert q.text == q.text.strip()
    if q.email:
        assert q.email == q.email.lower()
    if q.phone_e164:
        assert q.phone_e164.startswith("+") and q.phone_e164[1:].isdigit()
