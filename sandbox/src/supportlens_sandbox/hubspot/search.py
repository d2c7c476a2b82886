"""HubSpot CRM search semantics: filterGroups (OR of ANDs), free-text query, sorts, paging, limits."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from supportlens_sandbox.hubspot.objects import (
    DATETIME_PROPERTIES,
    KNOWN_PROPERTIES,
    NUMBER_PROPERTIES,
    PHONE_PROPERTIES,
    SEARCHABLE,
    HsObject,
)

MAX_GROUPS = 5
MAX_FILTERS_PER_GROUP = 6
MAX_FILTERS = 18
MAX_LIMIT = 200
MAX_RESULTS = 10_000

OPERATORS = {
    "EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY", "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN",
}  # fmt: skip
_TOKEN_SPLIT = re.compile(r"[\s,;:()<>\"'\[\]]+")
_SUBTOKEN_SPLIT = re.compile(r"[@._\-+/]+")
_PHONE_LIKE = re.compile(r"^[\d\s()+\-.]+$")


class SearchError(ValueError):
    """A request HubSpot rejects with 400 VALIDATION_ERROR."""


@dataclass
class Filter:
    property: str
    operator: str
    value: Any = None
    values: list[Any] | None = None
    high_value: Any = None


@dataclass
class SearchRequest:
    groups: list[list[Filter]]
    query: str | None
    properties: list[str] | None
    sort: tuple[str, bool] | None  # (property, descending)
    limit: int
    after: int


def parse_request(object_type: str, body: Any) -> SearchRequest:
    if not isinstance(body, dict):
        raise SearchError("Invalid input JSON: expected an object.")
    raw_groups = body.get("filterGroups") or []
    if not isinstance(raw_groups, list):
        raise SearchError("filterGroups must be a list.")
    if len(raw_groups) > MAX_GROUPS:
        raise SearchError(f"Too many filter groups ({len(raw_groups)}). The maximum is {MAX_GROUPS}.")
    groups: list[list[Filter]] = []
    total = 0
    for group in raw_groups:
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list):
            raise SearchError("Each filter group needs a list of filters.")
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise SearchError(
                f"Too many filters in a filter group ({len(filters)}). "
                f"The maximum is {MAX_FILTERS_PER_GROUP}."
            )
        total += len(filters)
        groups.append([_parse_filter(object_type, f) for f in filters])
    if total > MAX_FILTERS:
        raise SearchError(
            f"Too many filters ({total}). The maximum is {MAX_FILTERS} across all filter groups."
        )
    query = body.get("query")
    if query is not None and not isinstance(query, str):
        raise SearchError("query must be a string.")
    properties = body.get("properties")
    if properties is not None and (
        not isinstance(properties, list) or not all(isinstance(p, str) for p in properties)
    ):
        raise SearchError("properties must be a list of property names.")
    sorts = body.get("sorts") or []
    if not isinstance(sorts, list):
        raise SearchError("sorts must be a list.")
    if len(sorts) > 1:
        raise SearchError("Only one sort is allowed.")
    sort = _parse_sort(object_type, sorts[0]) if sorts else None
    limit = body.get("limit", 10)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise SearchError("limit must be a non-negative integer.")
    if limit > MAX_LIMIT:
        raise SearchError(f"limit must be at most {MAX_LIMIT}.")
    after_raw = body.get("after")
    try:
        after = int(after_raw) if after_raw not in (None, "") else 0
    except (TypeError, ValueError):
        raise SearchError(f"Invalid after value: {after_raw!r}.") from None
    if after < 0:
        raise SearchError("after must not be negative.")
    if after + limit > MAX_RESULTS:
        raise SearchError(f"The search API returns at most {MAX_RESULTS} results per query.")
    return SearchRequest(groups, query, properties, sort, limit, after)


def _check_property(object_type: str, name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise SearchError("propertyName is required.")
    if name not in KNOWN_PROPERTIES[object_type]:
        raise SearchError(f"Property '{name}' does not exist on {object_type}.")
    return name


def _parse_filter(object_type: str, raw: Any) -> Filter:
    if not isinstance(raw, dict):
        raise SearchError("Each filter must be an object.")
    prop = _check_property(object_type, raw.get("propertyName"))
    operator = raw.get("operator")
    if operator not in OPERATORS:
        raise SearchError(f"Unknown operator {operator!r}.")
    f = Filter(prop, operator, raw.get("value"), raw.get("values"), raw.get("highValue"))
    if operator in ("IN", "NOT_IN"):
        if not isinstance(f.values, list) or not f.values:
            raise SearchError(f"Operator {operator} needs a non-empty 'values' list.")
    elif operator == "BETWEEN":
        if f.value is None or f.high_value is None:
            raise SearchError("Operator BETWEEN needs 'value' and 'highValue'.")
    elif operator not in ("HAS_PROPERTY", "NOT_HAS_PROPERTY") and f.value is None:
        raise SearchError(f"Operator {operator} needs a 'value'.")
    return f


def _parse_sort(object_type: str, raw: Any) -> tuple[str, bool]:
    if isinstance(raw, str):
        descending = raw.startswith("-")
        return _check_property(object_type, raw.lstrip("-")), descending
    if isinstance(raw, dict):
        direction = str(raw.get("direction", "ASCENDING")).upper()
        if direction not in ("ASCENDING", "DESCENDING"):
            raise SearchError("Sort direction must be ASCENDING or DESCENDING.")
        return _check_property(object_type, raw.get("propertyName")), direction == "DESCENDING"
    raise SearchError("Invalid sort.")


# -- evaluation ----------------------------------------------------------------------------------


def _to_millis(value: Any) -> int | None:
    if value is None:
        return None
    text = str(value).strip()
    if not text:
        return None
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def _typed(prop: str, value: Any) -> Any:
    """A comparable form of a stored or filter value for this property."""
    if value is None:
        return None
    if prop in DATETIME_PROPERTIES:
        return _to_millis(value)
    if prop in NUMBER_PROPERTIES:
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return None
    return str(value).lower()


def _tokens(text: str) -> set[str]:
    out: set[str] = set()
    for word in _TOKEN_SPLIT.split(text.lower()):
        if not word:
            continue
        out.add(word)
        out.update(part for part in _SUBTOKEN_SPLIT.split(word) if part)
    return out


def _contains_token(stored: str, pattern: str) -> bool:
    pattern = pattern.lower().strip()
    if not pattern:
        return False
    if "*" in pattern or "?" in pattern:
        return fnmatch.fnmatchcase(stored.lower(), pattern) or any(
            fnmatch.fnmatchcase(t, pattern) for t in _tokens(stored)
        )
    return pattern in _tokens(stored) or stored.lower() == pattern


def _compare(a: Any, b: Any, op: str) -> bool:
    if a is None or b is None:
        return False
    try:
        if op == "LT":
            return bool(a < b)
        if op == "LTE":
            return bool(a <= b)
        if op == "GT":
            return bool(a > b)
        return bool(a >= b)
    except TypeError:
        return False


def matches_filter(obj: HsObject, f: Filter) -> bool:
    raw = obj.properties.get(f.property)
    has = raw not in (None, "")
    op = f.operator
    if op == "HAS_PROPERTY":
        return has
    if op == "NOT_HAS_PROPERTY":
        return not has
    stored = _typed(f.property, raw) if has else None
    if op == "EQ":
        return has and stored == _typed(f.property, f.value)
    if op == "NEQ":
        return not has or stored != _typed(f.property, f.value)
    if op in ("LT", "LTE", "GT", "GTE"):
        return has and _compare(stored, _typed(f.property, f.value), op)
    if op == "BETWEEN":
        low, high = _typed(f.property, f.value), _typed(f.property, f.high_value)
        return has and _compare(stored, low, "GTE") and _compare(stored, high, "LTE")
    if op == "IN":
        return has and stored in {_typed(f.property, v) for v in f.values or []}
    if op == "NOT_IN":
        return not has or stored not in {_typed(f.property, v) for v in f.values or []}
    if op == "CONTAINS_TOKEN":
        return has and _contains_token(str(raw), str(f.value))
    if op == "NOT_CONTAINS_TOKEN":
        return not has or not _contains_token(str(raw), str(f.value))
    return False


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def matches_query(obj: HsObject, query: str) -> bool:
    """Free text over the default searchable properties: every word must start a token somewhere;
    a phone-like query matches phone numbers by their digits in any format."""
    text = query.strip().lower()
    if not text:
        return True
    values = [str(obj.properties.get(p) or "") for p in SEARCHABLE[obj.type]]
    if _PHONE_LIKE.match(text) and len(_digits(text)) >= 7:
        wanted = _digits(text)
        for prop in PHONE_PROPERTIES & set(SEARCHABLE[obj.type]) | {"phone"}:
            have = _digits(str(obj.properties.get(prop) or ""))
            if have and (wanted in have or (have in wanted and len(have) >= 7)):
                return True
    for word in text.split():
        word_digits = _digits(word)
        found = False
        for value in values:
            lowered = value.lower()
            if not lowered:
                continue
            if lowered.startswith(word) or any(t.startswith(word) for t in _tokens(lowered)):
                found = True
                break
        if (
            not found
            and word_digits
            and len(word_digits) >= 3
            and len(word_digits) == len(word.strip("+()-."))
        ):
            found = any(
                word_digits in _digits(str(obj.properties.get(p) or "")) for p in ("phone", "mobilephone")
            )
        if not found:
            return False
    return True


def run(objects: list[HsObject], request: SearchRequest) -> tuple[int, list[HsObject]]:
    """(total, page of results) for a parsed search request."""
    found = []
    for obj in objects:
        if obj.archived:
            continue
        if request.groups and not any(all(matches_filter(obj, f) for f in group) for group in request.groups):
            continue
        if request.query and not matches_query(obj, request.query):
            continue
        found.append(obj)
    if request.sort:
        prop, descending = request.sort
        present = [o for o in found if o.properties.get(prop) not in (None, "")]
        missing = [o for o in found if o.properties.get(prop) in (None, "")]
        present.sort(key=lambda o: (_typed(prop, o.properties.get(prop)), int(o.id)), reverse=descending)
        found = present + missing
    else:
        found.sort(key=lambda o: int(o.id))
    total = len(found)
    return total, found[request.after : request.after + request.limit]
