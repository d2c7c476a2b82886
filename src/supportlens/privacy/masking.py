"""Masking PII for display (viewers) and before storage (event text and URLs)."""

from __future__ import annotations

import re
from typing import Any

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9.\-]{1,253}\.[A-Za-z]{2,24}")
# Card-like runs: 13 to 19 digits, optionally separated by spaces or dashes.
CARD_RE = re.compile(r"(?<!\d)(?:\d[ \-]?){12,18}\d(?!\d)")
# Phone-like: optional +, then 7 to 15 digits with common separators.
PHONE_RE = re.compile(r"(?<![\w])\+?\(?\d{1,4}\)?(?:[ .\-]?\(?\d{2,4}\)?){2,5}(?![\w])")


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


def _is_viewer(principal: Any) -> bool:
    role = getattr(getattr(principal, "agent", None), "role", None)
    return role == "viewer"


def mask_email_for(principal: Any, email: str | None) -> str:
    if not email:
        return ""
    return mask_email(email) if _is_viewer(principal) else email


def mask_phone_for(principal: Any, phone: str | None) -> str:
    if not phone:
        return ""
    return mask_phone(phone) if _is_viewer(principal) else phone


def _digits(s: str) -> int:
    return sum(c.isdigit() for c in s)


def mask_pii_text(text: str) -> str:
    """Replace e-mail addresses, card-like digit runs and phone numbers in free text or URLs."""
    if not text:
        return text
    text = EMAIL_RE.sub("[email]", text)
    text = CARD_RE.sub(lambda m: "[card]" if 13 <= _digits(m.group()) <= 19 else m.group(), text)
    text = PHONE_RE.sub(lambda m: "[phone]" if 7 <= _digits(m.group()) <= 15 else m.group(), text)
    return text
