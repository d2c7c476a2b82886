"""Sites allowed to send events: public site keys (stored as SHA-256), allowed origins, revocation."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.db.base import utcnow
from supportlens.sessions.models import IngestSite, UserSession

KEY_PREFIX = "pk_live_"


class SiteError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)


def normalise_origin(value: str) -> str:
    """`https://Shop.Example:443/path` -> `https://shop.example`; raises SiteError when not an origin."""
    raw = value.strip()
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SiteError("origin", f"not an http(s) origin: {raw[:100]!r}")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    try:
        port = parts.port
    except ValueError as exc:
        raise SiteError("origin", f"bad port in {raw[:100]!r}") from exc
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


@dataclass(frozen=True)
class SiteInfo:
    """What the ingest hot path needs, cached briefly per process."""

    id: uuid.UUID
    name: str
    allowed_origins: frozenset[str]
    clarity_project_id: str
    require_consent: bool
    active: bool


def _info(site: IngestSite) -> SiteInfo:
    return SiteInfo(
        id=site.id,
        name=site.name,
        allowed_origins=frozenset(site.allowed_origins or []),
        clarity_project_id=site.clarity_project_id,
        require_consent=site.require_consent,
        active=site.active and site.revoked_at is None,
    )


class SiteCache:
    """Per-process cache of site lookups and of all allowed origins (for CORS preflights)."""

    def __init__(self, ttl_seconds: float) -> None:
        self.ttl = ttl_seconds
        self._by_hash: dict[str, tuple[float, SiteInfo | None]] = {}
        self._origins: tuple[float, frozenset[str]] | None = None

    def clear(self) -> None:
        self._by_hash.clear()
        self._origins = None

    async def by_key(self, db: AsyncSession, key: str) -> SiteInfo | None:
        digest = hash_key(key)
        now = time.monotonic()
        hit = self._by_hash.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        site = await db.scalar(select(IngestSite).where(IngestSite.key_hash == digest))
        info = _info(site) if site is not None else None
        if self.ttl > 0:
            if len(self._by_hash) > 10_000:
                self._by_hash.clear()
            self._by_hash[digest] = (now + self.ttl, info)
        return info

    async def all_origins(self, db: AsyncSession) -> frozenset[str]:
        now = time.monotonic()
        if self._origins is not None and self._origins[0] > now:
            return self._origins[1]
        rows = (
            await db.scalars(
                select(IngestSite).where(IngestSite.active.is_(True), IngestSite.revoked_at.is_(None))
            )
        ).all()
        origins = frozenset(o for s in rows for o in (s.allowed_origins or []))
        if self.ttl > 0:
            self._origins = (now + self.ttl, origins)
        return origins


# Every SiteCache in this process, so a revocation here takes effect here at once.
_CACHES: list[SiteCache] = []


def make_cache(ttl_seconds: float) -> SiteCache:
    cache = SiteCache(ttl_seconds)
    _CACHES.append(cache)
    return cache


def clear_caches() -> None:
    for cache in _CACHES:
        cache.clear()


async def create_site(
    db: AsyncSession,
    *,
    name: str,
    origins: list[str],
    clarity_project_id: str = "",
    require_consent: bool = False,
    key: str | None = None,
) -> tuple[IngestSite, str]:
    """Create a site; returns it with its public key (only its hash is stored: show the key once)."""
    name = name.strip()
    if not name or len(name) > 200:
        raise SiteError("name", "a name of 1 to 200 characters is required")
    if not origins:
        raise SiteError("origin", "at least one allowed origin is required")
    normalised = sorted({normalise_origin(o) for o in origins})
    project = clarity_project_id.strip()
    if len(project) > 64:
        raise SiteError("clarity_project", "at most 64 characters")
    key = key or new_key()
    site = IngestSite(
        name=name,
        key_prefix=key[:16],
        key_hash=hash_key(key),
        allowed_origins=normalised,
        clarity_project_id=project,
        require_consent=require_consent,
        active=True,
    )
    db.add(site)
    await db.commit()
    clear_caches()
    return site, key


async def list_sites(db: AsyncSession) -> list[IngestSite]:
    return list((await db.scalars(select(IngestSite).order_by(IngestSite.created_at.desc()))).all())


async def revoke_site(db: AsyncSession, site_id: uuid.UUID) -> IngestSite | None:
    site = await db.get(IngestSite, site_id)
    if site is None:
        return None
    if site.revoked_at is None:
        site.active = False
        site.revoked_at = utcnow()
        await db.commit()
    clear_caches()
    return site


async def revoke_by_prefix(db: AsyncSession, prefix: str) -> IngestSite | None:
    site = await db.scalar(select(IngestSite).where(IngestSite.key_prefix == prefix[:24]))
    if site is None:
        return None
    return await revoke_site(db, site.id)


AUTOMATED_WINDOW_DAYS = 7


async def automated_counts(
    db: AsyncSession, *, days: int = AUTOMATED_WINDOW_DAYS
) -> dict[uuid.UUID, dict[str, int]]:
    """Per site, its automated sessions of the last `days` days by reason (sessions/automation.py)."""
    since = utcnow() - timedelta(days=days)
    rows = await db.execute(
        select(UserSession.site_id, UserSession.automated, func.count())
        .where(UserSession.automated.is_not(None), UserSession.session_start >= since)
        .group_by(UserSession.site_id, UserSession.automated)
    )
    counts: dict[uuid.UUID, dict[str, int]] = {}
    for site_id, reason, n in rows:
        if site_id is not None and reason is not None:
            counts.setdefault(site_id, {})[reason] = n
    return counts
