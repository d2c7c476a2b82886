"""One function every feature calls to say who did what to what, when and from where."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.audit.models import AuditEntry
from supportlens.config import Settings
from supportlens.customers.emails import canonical_email_or_none
from supportlens.logging import request_id_var


def customer_ref(email: str, settings: Settings) -> str:
    """A keyed hash (on the settings' secret key) naming a customer without PII, so audit rows survive
    erasure unchanged.

    Keyed on the canonical e-mail, so every form of one address names one customer."""
    key = settings.secret_key.get_secret_value().encode()
    canonical = canonical_email_or_none(email) or email.strip().lower()
    digest = hmac.new(key, canonical.encode(), hashlib.sha256).hexdigest()
    return f"cust_{digest[:32]}"


def address_ref(ip: str | None, settings: Settings) -> str:
    """A keyed pseudonym of a client address for logs: equal addresses give equal pseudonyms (one
    client's requests can be followed), and without the secret key it cannot be turned back into the
    address (unlike a plain hash of the small IPv4 space)."""
    if not ip:
        return "ip_unknown"
    key = settings.secret_key.get_secret_value().encode()
    return "ip_" + hmac.new(key, b"address:" + ip.encode(), hashlib.sha256).hexdigest()[:16]


def client_ip(request: Request | None) -> str | None:
    if request is None or request.client is None:
        return None
    return request.client.host


async def record(
    db: AsyncSession,
    action: str,
    *,
    request: Request | None = None,
    actor: Any | None = None,
    actor_email: str | None = None,
    target_type: str | None = None,
    target: str | None = None,
    outcome: str = "ok",
    detail: dict[str, Any] | None = None,
    commit: bool = True,
) -> AuditEntry:
    """Append one audit row. `actor` is an Agent (or None for anonymous / system actions)."""
    entry = AuditEntry(
        actor_id=getattr(actor, "id", None),
        actor_email=getattr(actor, "email", None) or actor_email,
        actor_role=getattr(actor, "role", None),
        action=action,
        target_type=target_type,
        target=target[:256] if target else None,
        outcome=outcome,
        ip=client_ip(request),
        user_agent=(request.headers.get("user-agent", "")[:512] if request is not None else None),
        request_id=request_id_var.get(),
        detail=detail or {},
    )
    db.add(entry)
    if commit:
        await db.commit()
    return entry


async def record_session(
    db: AsyncSession,
    action: str,
    session: Any,
    *,
    settings: Settings,
    request: Request | None,
    actor: Any | None,
    outcome: str = "ok",
    commit: bool = True,
    **detail: Any,
) -> AuditEntry:
    """An agent's action on one session (a `UserSession`): targeted at the session, with the
    pseudonym of the customer the site named on it, so "who looked at this customer" is answerable."""
    if getattr(session, "customer_email", None):
        detail["customer"] = customer_ref(session.customer_email, settings)
    return await record(
        db,
        action,
        request=request,
        actor=actor,
        target_type="session",
        target=str(session.id),
        outcome=outcome,
        detail=detail,
        commit=commit,
    )
