"""Storage masking is precise: PII goes, order ids, dates, timestamps and versions stay."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from supportlens.masking import luhn_ok, mask_email, mask_phone, mask_pii_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane@acme.io today", "write to [email] today"),
        ("/account?email=jane%40acme.io&x=1", "/account?email=[email]&x=1"),
        ("j.doe+billing@mail.acme.co.uk", "[email]"),
        ("call +1 415-555-2671 now", "call [phone] now"),
        ("(415) 555-2671", "[phone]"),
        ("415.555.2671", "[phone]"),
        ("?phone=4155552671&x=1", "?phone=[phone]&x=1"),
        ("tel:%2B14155552671", "tel:[phone]"),
        ("card 4111 1111 1111 1111 ok", "card [card] ok"),
        ("4242-4242-4242-4242", "[card]"),
        ("amex 3782 822463 10005", "amex [card]"),
        ("pan=4111111111111111", "pan=[card]"),
        # internationalised addresses, composed or not (an agent's reason, a customer's page title)
        ("j\u00f6rg@m\u00fcller.de told us", "[email] told us"),
        ("jo\u0308rg@mu\u0308ller.de told us", "[email] told us"),
        ("\u592a\u90ce@\u4f8b\u3048.\u30c6\u30b9\u30c8", "[email]"),
        ("taro..yamada@docomo.ne.jp", "[email]"),
    ],
)
def test_pii_is_masked(text, expected):
    assert mask_pii_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "/orders/4155552671",  # a bare 10-digit order id is not a phone number without context
        "order ORD-20261126-0042",
        "/orders/100234567",
        "invoice 1234567890123",  # 13 digits, fails Luhn: not a card
        "ts=1764115267123",
        "2026-11-26 10:41:07",
        "v=1.2.3.4",
        "/products/sku-00012345",
        "id=123456789012",
        "ref 9999999999999999",  # 16 digits starting with 9: no card issuer
        "button#pay-now",
        "",
    ],
)
def test_ids_dates_and_numbers_survive(text):
    assert mask_pii_text(text) == text


def test_luhn():
    assert luhn_ok("4111111111111111") and luhn_ok("378282246310005")
    assert not luhn_ok("4111111111111112")


def test_display_masks():
    assert mask_email("jane@acme.io") == "j***@acme.io"
    assert mask_phone("+1 415 555 2671") == "*********71"


@given(st.emails())
def test_any_email_in_text_is_masked(email):
    masked = mask_pii_text(f"contact: {email} thanks")
    assert email not in masked


@given(st.text(alphabet="abcdefghij-_/ .", max_size=60))
def test_text_without_digits_or_at_is_untouched(text):
    assert mask_pii_text(text) == text
