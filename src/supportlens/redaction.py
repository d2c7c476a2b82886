"""A log processor that removes secrets from every log line (ours and third-party libraries').

Defence in depth: nothing should log a secret, but a URL with a token in its query, an Authorization
header in an error, or a library's debug line must not leak one either. Values under secret-looking
keys are dropped, and known secret shapes are masked inside any string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

REDACTED = "[redacted]"
_SECRET_KEYS = re.compile(
    r"(password|passwd|secret|token|authorization|cookie|api[_-]?key|site[_-]?key)", re.I
)
_PATTERNS = [
    # SupportLens API tokens, session cookies, set-password links, public site keys
    (re.compile(r"\b(slt_|sls_|slp_|pk_(?:live|test)_)[A-Za-z0-9_\-]{6,}"), r"\1" + REDACTED),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/\-]+=*"), r"\1" + REDACTED),
    (re.compile(r"(?i)\b(basic\s+)[A-Za-z0-9+/]+=*"), r"\1" + REDACTED),
    (
        re.compile(
            r"(?i)([?&;](?:token|access_token|id_token|refresh_token|code|code_verifier|password|secret|"
            r"client_secret|api_key|key|sitekey|site_key)=)[^&\s\"']+"
        ),
        r"\1" + REDACTED,
    ),
    (re.compile(r"(?i)((?:sl_session|sl_oidc|sl_2fa|sl_login_csrf)=)[^;\s\"']+"), r"\1" + REDACTED),
]
_KEEP = frozenset({"event", "logger", "level", "timestamp", "request_id", "pid", "path", "method"})


def redact_text(value: str) -> str:
    for pattern, repl in _PATTERNS:
        value = pattern.sub(repl, value)
    return value


def _clean(key: str, value: Any) -> Any:
    if isinstance(value, str):
        if key not in _KEEP and _SECRET_KEYS.search(key):
            return REDACTED
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _clean(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(key, v) for v in value]
    return value


def redact_secrets(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> Mapping[str, Any]:
    """structlog processor."""
    return {k: _clean(k, v) for k, v in event_dict.items()}
