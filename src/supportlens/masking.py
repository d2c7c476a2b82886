"""Masking PII: the masks themselves, for display to viewers (web/viewer.py decides where) and
before storage (event text and URLs).

Storage masking is precise rather than greedy: order ids, dates, timestamps and version numbers
stay readable (agents need them), while e-mail addresses, phone numbers and card numbers go.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from urllib.parse import unquote

import phonenumbers

# Local parts may hold most printable characters; URL delimiters (= & ? /) end them so `email=` survives.
EMAIL_RE = re.compile(
    r"[A-Za-z0-9.!#$%'*+^_`{|}~\-]{1,64}@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63})*"
    r"\.[A-Za-z][A-Za-z0-9\-]{1,62}"
)
# The second pass: any local part, and internationalised domains (letters of any script, combining
# marks); run on NFC text so a decomposed `mu\u0308ller.de` is caught like `müller.de`.
_LABEL = r"[\w\-\u0300-\u036f]"
_ANY_LOCAL_EMAIL_RE = re.compile(
    rf"[^\s@]{{1,64}}@{_LABEL}{{1,63}}(?:\.{_LABEL}{{1,63}})*\.[^\W\d_]{_LABEL}{{1,62}}"
)
# Runs of 13 to 19 digits, optionally split by single spaces or dashes.
CARD_RE = re.compile(r"(?<!\d)\d(?:[ \-]?\d){12,18}(?!\d)")
# Written the way cards are printed: 4-4-4-x or Amex 4-6-5.
_GROUPED_CARD_RE = re.compile(r"\d{4}([ \-])\d{4}\1\d{4}\1\d{1,7}|\d{4}([ \-])\d{6}\2\d{4,5}")
# A bare digit run counts as a phone number only right after a word that says so (phone=..., tel:...).
_PHONE_CONTEXT_RE = re.compile(
    r"(?:phone|tel|mobile|cell|sms|fax|whatsapp|contact)\w*\W{0,3}$", re.IGNORECASE
)
_DIGITS7_RE = re.compile(r"(?:\d\D{0,3}){7}")
PHONE_REGION = "US"


def mask_email(email: str) -> str:
    """j***@acme.io"""
    if "@" not in email:
        return "***"
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_phone(phone: str) -> str:
    """Only the last two digits stay."""
    digits = [c for c in phone if c.isdigit()]
    if len(digits) <= 2:
        return "**"
    return "*" * (len(digits) - 2) + "".join(digits[-2:])


def _digits(s: str) -> int:
    return sum(c.isdigit() for c in s)


def luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    run = match.group()
    if _GROUPED_CARD_RE.fullmatch(run):
        return "[card]"
    digits = "".join(c for c in run if c.isdigit())
    # Issuer ranges start with 2-6 (Mastercard 2/5, Amex 3, Visa 4, Discover 6) and pass Luhn.
    if digits[0] in "23456" and luhn_ok(digits):
        return "[card]"
    return run


def _mask_phones(text: str) -> str:
    if not _DIGITS7_RE.search(text):
        return text
    out: list[str] = []
    last = 0
    for m in phonenumbers.PhoneNumberMatcher(text, PHONE_REGION, leniency=phonenumbers.Leniency.VALID):
        raw = m.raw_string
        formatted = raw.startswith("+") or any(c in raw for c in " -.()")
        if not formatted and not _PHONE_CONTEXT_RE.search(text[max(0, m.start - 24) : m.start]):
            continue  # a bare digit run: an order id or a timestamp unless the text says it is a phone
        out.append(text[last : m.start])
        out.append("[phone]")
        last = m.end
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


@lru_cache(maxsize=8192)
def mask_pii_text(text: str) -> str:
    """Replace e-mail addresses, card numbers and phone numbers in free text or URLs.

    Percent-encoded text (query strings) is decoded first, so `jane%40acme.io` is caught too.
    """
    if not text:
        return text
    if "%" in text:
        text = unquote(text, errors="replace")
    if "@" in text:
        text = EMAIL_RE.sub("[email]", text)
        if "@" in text:  # local parts made only of URL delimiters, internationalised addresses, oddities
            text = _ANY_LOCAL_EMAIL_RE.sub("[email]", unicodedata.normalize("NFC", text))
    if _DIGITS7_RE.search(text):
        text = CARD_RE.sub(_card, text)
        text = _mask_phones(text)
    return text
