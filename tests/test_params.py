"""The bounded parameter types: where their edges are, and that a value past one is a ValueError."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Annotated

import pytest
from pydantic import TypeAdapter, ValidationError

from supportlens.params import (
    BIGINT_MAX,
    END_OF_TIME,
    Day,
    Instant,
    OptionalDay,
    RowId,
    bounded_instant,
    decodes_with,
)

PLUS_14, MINUS_14 = timezone(timedelta(hours=14)), timezone(timedelta(hours=-14))


def test_an_instant_is_converted_to_utc_and_a_naive_one_is_utc():
    assert bounded_instant(datetime(2026, 1, 1, 12, tzinfo=PLUS_14)) == datetime(2025, 12, 31, 22, tzinfo=UTC)
    assert bounded_instant(datetime(2026, 1, 1, 12)) == datetime(2026, 1, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    "value",
    [
        datetime(1, 1, 1, tzinfo=PLUS_14),  # converting to UTC overflows
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=MINUS_14),  # likewise
        datetime(1899, 12, 31, 23, 59, 59, tzinfo=UTC),
        END_OF_TIME,
        datetime(9998, 12, 31, 12, tzinfo=MINUS_14),  # 9999-01-01T02:00Z
    ],
)
def test_instants_past_the_edges_are_refused(value):
    with pytest.raises(ValueError, match="must be from"):
        bounded_instant(value)
    with pytest.raises(ValidationError):
        TypeAdapter(Instant).validate_python(value.isoformat())


def test_the_last_instant_and_the_last_day_are_accepted():
    last = END_OF_TIME - timedelta(microseconds=1)
    assert TypeAdapter(Instant).validate_python(last.isoformat()) == last
    assert TypeAdapter(Day).validate_python("9998-12-31") == date(9998, 12, 31)
    with pytest.raises(ValidationError):
        TypeAdapter(Day).validate_python("9999-12-31")


def test_a_blank_optional_day_is_absent():
    assert TypeAdapter(OptionalDay).validate_python("") is None
    assert TypeAdapter(OptionalDay).validate_python(None) is None


def test_a_row_id_fits_bigint():
    assert TypeAdapter(RowId).validate_python(str(BIGINT_MAX)) == BIGINT_MAX
    for bad in (str(BIGINT_MAX + 1), "0", str(-(2**63) - 1)):
        with pytest.raises(ValidationError):
            TypeAdapter(RowId).validate_python(bad)


def test_a_cursor_must_decode_and_stays_as_sent():
    def decode(raw: str) -> int:
        return int(raw, 16)

    cursor = TypeAdapter(Annotated[str, decodes_with(decode)])
    assert cursor.validate_python("ff") == "ff"
    with pytest.raises(ValidationError):
        cursor.validate_python("not hex")
