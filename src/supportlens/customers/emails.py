"""The one canonical form of a customer's e-mail address.

Every place that stores, looks up, keys or erases a customer by e-mail (ingest, the mapping engine,
search, the sessions API, the customer pages, erasure, audit pseudonyms) calls `canonical_email`, so a
customer stored by one is found by all the others.

The form: trimmed, Unicode NFC (a decomposed `jo\\u0308rg@mu\\u0308ller.de` and the composed
`jörg@müller.de` are one customer), lower-cased. `str.lower()` can decompose a few characters, so NFC
is applied again after it.

What is accepted is deliberately the shape ingest accepts, not an RFC 5322 validator's opinion:
sites name their signed-in customers with the addresses their own systems hold, some of which a strict
validator rejects (Japanese carriers issued `taro..yamada@docomo.ne.jp` for years). Anything ingest
stored must be erasable, so erasure uses the same rule: a local part of 1 to 64 characters and a domain
of 1 to 253, split by one `@`, no whitespace, at most 254 characters in all after normalisation.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

MAX_EMAIL_LENGTH = 254
# The shape of an address: the Ingest v1 schema's `customer.email` (CustomerEmail below) and erasure.
EMAIL_PATTERN = r"^[^@\s]{1,64}@[^@\s]{1,253}$"
_EMAIL_SHAPE = re.compile(EMAIL_PATTERN)


class InvalidEmail(ValueError):
    """Not an e-mail address in the shape ingest accepts; the message says what is wrong."""


def canonical_email(raw: str) -> str:
    """The canonical form of `raw`; raises InvalidEmail when it is not an e-mail address."""
    value = unicodedata.normalize("NFC", raw.strip())
    value = unicodedata.normalize("NFC", value.lower())
    if not value:
        raise InvalidEmail("enter the customer's e-mail address")
    if len(value) > MAX_EMAIL_LENGTH:
        raise InvalidEmail(f"an e-mail address has at most {MAX_EMAIL_LENGTH} characters")
    if not _EMAIL_SHAPE.fullmatch(value):
        raise InvalidEmail("not an e-mail address (expected one @ between a name and a domain, no spaces)")
    return value


def canonical_email_or_none(raw: str | None) -> str | None:
    """Canonical form, or None for an empty or malformed value (for lookups that simply find nothing)."""
    if not raw:
        return None
    try:
        return canonical_email(raw)
    except InvalidEmail:
        return None


# A request field holding a customer's e-mail: bounded like ingest's, stored and compared canonical.
CustomerEmail = Annotated[
    str,
    StringConstraints(max_length=MAX_EMAIL_LENGTH, pattern=EMAIL_PATTERN),
    AfterValidator(canonical_email),
]
