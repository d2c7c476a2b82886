"""What the agent typed, normalised: trimmed, lower-cased e-mail, phone in E.164, and its kind."""

from __future__ import annotations

import re
import unicodedata
from typing import Literal, TypedDict

import phonenumbers
from pydantic import BaseModel, ConfigDict

from supportlens.customers.emails import canonical_email_or_none
from supportlens.problems import ProblemError

MAX_QUERY_LENGTH = 200
DEFAULT_REGION = "US"

QueryKind = Literal["email", "phone", "name", "company"]

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,253}\.[^@\s.]{2,63}$")
PHONE_CHARS_RE = re.compile(r"^\+?[\d\s().\-/]{7,30}$")
DOMAIN_RE = re.compile(r"^(?:www\.)?[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63})*\.[a-z]{2,24}$", re.IGNORECASE)
COMPANY_WORDS = frozenset(
    """inc inc. llc l.l.c. ltd ltd. limited corp corp. corporation co co. company gmbh ag sa s.a. sas sarl
    plc bv b.v. nv pty group holdings labs studio studios partners associates industries enterprises
    technologies solutions systems services ventures capital bank foundation""".split()
)


class VendorTerms(TypedDict):
    """What a vendor client searches by: plain values, no product type."""

    text: str
    email: str | None
    phone_e164: str | None


class SearchQuery(BaseModel):
    model_config = ConfigDict(frozen=True)

    raw: str
    text: str
    kind: QueryKind
    email: str | None = None
    phone_e164: str | None = None

    @property
    def normalized(self) -> str:
        """One key per meaning: the e-mail, the E.164 number, or the case-folded text."""
        if self.email:
            return self.email
        if self.phone_e164:
            return self.phone_e164
        return self.text.casefold()

    @property
    def terms(self) -> VendorTerms:
        """The plain values a vendor client searches by: the text, and the e-mail or E.164 number."""
        return VendorTerms(text=self.text, email=self.email, phone_e164=self.phone_e164)


def _bad(detail: str) -> ProblemError:
    return ProblemError(400, "Invalid search query", detail, field="q")


def _phone(text: str) -> str | None:
    if not PHONE_CHARS_RE.match(text):
        return None
    digits = sum(c.isdigit() for c in text)
    if digits < 7 or digits > 15:
        return None
    try:
        number = phonenumbers.parse(text, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _looks_like_company(text: str) -> bool:
    if DOMAIN_RE.match(text):
        return True
    words = [w.strip(",") for w in text.casefold().split()]
    return any(w in COMPANY_WORDS for w in words[1:]) or "&" in text


def parse_query(raw: str) -> SearchQuery:
    """Normalise a search box entry. Raises a 400 problem naming `q` when empty or too long."""
    if raw is None:
        raise _bad("q is required")
    text = unicodedata.normalize("NFKC", raw)
    text = " ".join(text.split())
    if not text:
        raise _bad("q must not be empty")
    if len(text) > MAX_QUERY_LENGTH:
        raise _bad(f"q must be at most {MAX_QUERY_LENGTH} characters")
    if EMAIL_RE.match(text):
        email = canonical_email_or_none(raw) or text.lower()
        return SearchQuery(raw=raw, text=text, kind="email", email=email)
    phone = _phone(text)
    if phone:
        return SearchQuery(raw=raw, text=text, kind="phone", phone_e164=phone)
    kind: QueryKind = "company" if _looks_like_company(text) else "name"
    return SearchQuery(raw=raw, text=text, kind=kind)
