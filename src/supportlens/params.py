"""Bounded types for the dates, instants, row ids and cursors agents send in query and path parameters.

Validated at the edge, before a handler runs: a value out of bounds is a 400 problem naming the field
(problems.handle_validation_error), never an OverflowError or a database error later, and never a
streamed answer cut off half-way. The bounds leave room for the arithmetic handlers do with the value
(the day after `to`, a ±14:00 offset converted to UTC) and fit PostgreSQL's bigint and timestamptz:

    a day       1900-01-01 .. 9998-12-31
    an instant  1900-01-01T00:00:00Z <= t < 9999-01-01T00:00:00Z, after conversion to UTC
                (a value without an offset is UTC)
    a row id    1 .. 2**63 - 1 (bigint)

An empty value (`?to=`, as a blank date input in a GET form sends it) means the parameter is absent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field

FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(9998, 12, 31)
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
END_OF_TIME = datetime(9999, 1, 1, tzinfo=UTC)  # exclusive
BIGINT_MAX = 2**63 - 1


def bounded_day(value: date) -> date:
    if not FIRST_DAY <= value <= LAST_DAY:
        raise ValueError(f"must be a day from {FIRST_DAY} to {LAST_DAY}")
    return value


def bounded_instant(value: datetime) -> datetime:
    """The instant in UTC, or ValueError when it lies outside the bounds (or cannot be converted)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+14:00 is a day before year 1 in UTC
        utc = None
    if utc is None or not EARLIEST <= utc < END_OF_TIME:
        raise ValueError(f"must be from {EARLIEST.isoformat()} to before {END_OF_TIME.isoformat()}")
    return utc


def _blank_is_absent(value: Any) -> Any:
    return None if value == "" else value


def decodes_with(decode: Callable[[str], object]) -> AfterValidator:
    """A cursor check: the raw cursor stays as it is, but it must decode (decode raises ValueError)."""

    def check(raw: str) -> str:
        decode(raw)
        return raw

    return AfterValidator(check)


Day = Annotated[date, AfterValidator(bounded_day)]
Instant = Annotated[datetime, AfterValidator(bounded_instant)]
# Optional forms for query parameters; a blank value is absent.
OptionalDay = Annotated[Day | None, BeforeValidator(_blank_is_absent)]
OptionalInstant = Annotated[Instant | None, BeforeValidator(_blank_is_absent)]
RowId = Annotated[int, Field(ge=1, le=BIGINT_MAX)]
