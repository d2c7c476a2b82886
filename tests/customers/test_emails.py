"""The canonical e-mail: one form for ingest, mapping, search, the sessions API and erasure."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from supportlens.capture.schemas import CustomerIn
from supportlens.customers.emails import InvalidEmail, canonical_email, canonical_email_or_none

COMPOSED = "j\u00f6rg@m\u00fcller.de"
DECOMPOSED = "jo\u0308rg@mu\u0308ller.de"


def test_trimmed_lower_cased_and_composed() -> None:
    assert canonical_email("  Jane.Doe@ACME.io \n") == "jane.doe@acme.io"
    assert canonical_email(DECOMPOSED) == COMPOSED
    assert canonical_email(DECOMPOSED.upper()) == COMPOSED
    assert unicodedata.is_normalized("NFC", canonical_email("\u0130STANBUL@example.com"))


def test_forms_a_strict_validator_rejects_are_kept() -> None:
    # Accepted at ingest, so they must be erasable: the rule is the ingest shape, not RFC 5322.
    assert canonical_email("Taro..Yamada@docomo.ne.jp") == "taro..yamada@docomo.ne.jp"
    assert canonical_email(".dot-first@example.com") == ".dot-first@example.com"


@pytest.mark.parametrize(
    "bad",
    ["", "   ", "no-at-sign", "@example.com", "jane@", "a@b@c", "jane doe@acme.io", "x" * 65 + "@a.io"],
)
def test_not_an_email_is_refused(bad: str) -> None:
    with pytest.raises(InvalidEmail):
        canonical_email(bad)
    assert canonical_email_or_none(bad) is None


def test_too_long_is_refused() -> None:
    with pytest.raises(InvalidEmail, match="254"):
        canonical_email("a@" + "b" * 253)


_local = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="@\x00"), min_size=1, max_size=64
)
_domain = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="@\x00"), min_size=1, max_size=40
)


@given(_local, _domain)
def test_every_email_ingest_accepts_is_canonical_and_erasable(local: str, domain: str) -> None:
    """Whatever the ingest schema stores passes erasure's rule unchanged (nothing stored is un-erasable)."""
    try:
        stored = CustomerIn.model_validate({"email": f"{local}@{domain}"}).email
    except ValidationError:
        return
    assert stored is not None
    assert canonical_email(stored) == stored
    assert canonical_email(unicodedata.normalize("NFD", stored)) == stored
