"""The hostile corpus: strings and payloads an attacker sends to public and agent endpoints."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

ORIGIN = "https://shop.example"
# Each script payload, if it ever ran in an agent's browser, would set window.__pwned.
XSS = [
    "<script>window.__pwned=1</script>",
    '"><img src=x onerror="window.__pwned=2">',
    "<svg/onload=window.__pwned=3>",
    "javascript:window.__pwned=4",
    "'-window.__pwned=5-'",
    '<iframe srcdoc="<script>parent.__pwned=6</script>"></iframe>',
    "{{7*7}}{% raw %}<b>jinja</b>",
    "</script><script>window.__pwned=8</script>",
    '<a href="javascript:window.__pwned=9">x</a>',
    "<details open ontoggle=window.__pwned=10>",
]
SQLI = [
    "' OR '1'='1",
    "'; DROP TABLE user_sessions; --",
    '" OR 1=1 --',
    "1; SELECT pg_sleep(5)",
    "admin'--",
    "%' UNION SELECT email, password_hash FROM agents --",
]
WRONG_TYPES: list[Any] = [None, 1, 1.5, True, [], {}, "x", [1, 2], {"$ne": None}]


def batch(site_key: str, *, session: str | None = None, **over: Any) -> dict[str, Any]:
    sid = session or uuid.uuid4().hex[:12]
    body: dict[str, Any] = {
        "siteKey": site_key,
        "clarity": {"projectId": "p1", "userId": "hostileuser", "sessionId": sid, "pageNum": 1},
        "customer": {"email": "victim@acme.io", "id": "cus_1", "name": "Victim"},
        "consent": {"analytics": True},
        "page": {"url": f"{ORIGIN}/pay", "title": "Pay", "referrer": "", "viewport": {"w": 1280, "h": 800}},
        "events": [
            {
                "id": str(uuid.uuid4()),
                "type": "click",
                "ts": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "url": f"{ORIGIN}/pay",
                "selector": "button#pay",
                "x": 10,
                "y": 20,
                "data": {"text": "Pay"},
            }
        ],
    }
    body.update(over)
    return body


def xss_batch(site_key: str) -> dict[str, Any]:
    """A well-formed batch whose every free-text field carries a script payload (ingest accepts it)."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    events = []
    for i, p in enumerate(XSS):
        events.append(
            {
                "id": str(uuid.uuid4()),
                "type": ["click", "error", "custom", "form_submit"][i % 4],
                "ts": now,
                "url": f"{ORIGIN}/pay?q={p}",
                "selector": p[:500],
                "x": 5 * i,
                "y": 7 * i,
                "data": {"text": p, "message": p, "name": p},
            }
        )
    return batch(
        site_key,
        session="xsssession1",
        customer={"email": "victim@acme.io", "id": XSS[1][:128], "name": XSS[0][:200]},
        page={
            "url": f"{ORIGIN}/pay#{XSS[3]}",
            "title": XSS[2],
            "referrer": XSS[6],
            "viewport": {"w": 1, "h": 1},
        },
        events=events,
    )


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"a": value}
    return value
