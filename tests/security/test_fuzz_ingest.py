"""Property-based fuzzing of the ingest parser (the Pydantic models in capture/schemas.py): whatever the
bytes, parsing either succeeds with every bound respected or fails with a ValidationError, nothing else."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from supportlens.capture import schemas
from supportlens.capture.schemas import IngestBatch

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)
ids = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=64)
texts = st.text(max_size=300)
events = st.fixed_dictionaries(
    {
        "id": st.uuids().map(str),
        "type": st.sampled_from(
            ["navigation", "click", "scroll", "error", "form_submit", "rage_click", "dead_click", "custom"]
        ),
        "ts": st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1)).map(
            lambda d: d.isoformat() + "Z"
        ),
        "url": st.text(max_size=2048),
        "selector": st.text(max_size=512) | st.none(),
        "x": st.integers(-1_000_000, 1_000_000),
        "y": st.integers(-1_000_000, 1_000_000),
        "data": st.dictionaries(
            st.text(min_size=1, max_size=40),
            st.text(max_size=200) | st.integers() | st.booleans(),
            max_size=5,
        ),
    }
)
batches = st.fixed_dictionaries(
    {
        "siteKey": st.text(min_size=8, max_size=100),
        "clarity": st.fixed_dictionaries({"projectId": ids, "userId": ids, "sessionId": ids}),
        "customer": st.none()
        | st.fixed_dictionaries(
            {"email": st.emails(), "id": texts.map(lambda s: s[:128]), "name": texts.map(lambda s: s[:200])}
        ),
        "page": st.none() | st.fixed_dictionaries({"url": st.text(max_size=2048), "title": texts}),
        "events": st.lists(events, max_size=5),
    }
)


def _check_bounds(b: IngestBatch) -> None:
    assert 8 <= len(b.site_key) <= 100
    assert len(b.events) <= schemas.MAX_EVENTS
    for e in b.events:
        assert e.ts.tzinfo is not None and e.ts.utcoffset().total_seconds() == 0
        assert e.url is None or len(e.url) <= 2048
        assert e.selector is None or len(e.selector) <= 512
        assert len(e.data) <= schemas.DATA_MAX_KEYS
    if b.customer and b.customer.email:
        assert len(b.customer.email) <= 254


@FUZZ
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash_the_parser(raw: bytes):
    try:
        _check_bounds(IngestBatch.model_validate_json(raw))
    except ValidationError:
        pass


@FUZZ
@given(json_values)
def test_arbitrary_json_never_crashes_the_parser(value: Any):
    try:
        _check_bounds(IngestBatch.model_validate_json(json.dumps(value)))
    except ValidationError:
        pass


@FUZZ
@given(batches)
def test_well_formed_batches_parse_and_round_trip(body: dict[str, Any]):
    try:
        batch = IngestBatch.model_validate_json(json.dumps(body))
    except ValidationError as exc:
        # only the documented bounds may refuse a generated batch (e.g. an e-mail shape the pattern rejects)
        assert all(
            e["type"] in ("string_pattern_mismatch", "value_error", "string_too_long") for e in exc.errors()
        )
        return
    _check_bounds(batch)
    again = IngestBatch.model_validate_json(batch.model_dump_json(by_alias=True))
    assert again == batch


@FUZZ
@given(batches, st.sampled_from(["siteKey", "clarity", "customer", "page", "events", "consent"]), json_values)
def test_one_field_replaced_by_junk(body: dict[str, Any], field: str, junk: Any):
    body = {**body, field: junk}
    try:
        _check_bounds(IngestBatch.model_validate_json(json.dumps(body)))
    except ValidationError:
        pass


def test_the_fuzzed_model_is_the_one_the_endpoint_uses():
    from supportlens.capture import views

    assert views.IngestBatch is IngestBatch
    valid = {
        "siteKey": "pk_live_abcdefgh",
        "clarity": {"projectId": "p", "userId": "u", "sessionId": "s"},
        "events": [{"id": str(uuid.uuid4()), "type": "click", "ts": datetime.now(UTC).isoformat()}],
    }
    assert IngestBatch.model_validate_json(json.dumps(valid)).events[0].type == "click"
