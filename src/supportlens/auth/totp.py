"""Optional TOTP second factor (RFC 6238, pyotp) for local accounts.

The shared secret is stored encrypted (AES-GCM, key derived from SUPPORTLENS_SECRET_KEY) in
`agents.totp_secret`; each code is accepted once (the last used time step is kept), with one step of
clock drift either way. Between the password and the code, the browser holds a short-lived signed
"pending" value naming the agent, never a session.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from typing import Any

import pyotp
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from supportlens.auth.models import Agent
from supportlens.config import Settings

ISSUER = "SupportLens"
PENDING_COOKIE = "sl_2fa"
PENDING_MAX_AGE = 300
ENROL_MAX_AGE = 900
_NONCE = 12


def _key(settings: Settings) -> bytes:
    secret = settings.secret_key.get_secret_value().encode()
    return hashlib.sha256(b"supportlens-totp-v1:" + secret).digest()


def encrypt_secret(settings: Settings, base32_secret: str) -> str:
    raw = base64.b32decode(base32_secret)
    nonce = os.urandom(_NONCE)
    sealed = AESGCM(_key(settings)).encrypt(nonce, raw, b"totp")
    return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")


def decrypt_secret(settings: Settings, stored: str) -> str:
    blob = base64.urlsafe_b64decode(stored + "=" * (-len(stored) % 4))
    raw = AESGCM(_key(settings)).decrypt(blob[:_NONCE], blob[_NONCE:], b"totp")
    return base64.b32encode(raw).decode()


def new_secret() -> str:
    return pyotp.random_base32()  # 32 base32 characters = 160 bits, as RFC 4226 recommends


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_svg_data_uri(uri: str) -> str | None:
    """A QR code of the otpauth URI as an SVG data: URI (CSP allows data: images)."""
    try:
        import segno
    except ImportError:  # pragma: no cover - segno is a dependency; the secret string still works
        return None
    return str(segno.make(uri, error="m").svg_data_uri(scale=5, border=2))


def _matching_step(secret: str, code: str, at: float | None = None) -> int | None:
    code = "".join(c for c in code if c.isdigit())
    if len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    now = time.time() if at is None else at
    step = int(now // totp.interval)
    for candidate in (step, step - 1, step + 1):
        if pyotp.utils.strings_equal(totp.generate_otp(candidate), code):
            return candidate
    return None


def verify_code(
    secret: str, code: str, *, last_step: int | None = None, at: float | None = None
) -> int | None:
    """The time step the code belongs to, if valid and newer than the last one used; else None."""
    step = _matching_step(secret, code, at)
    if step is None or (last_step is not None and step <= last_step):
        return None
    return step


def verify_for_agent(settings: Settings, agent: Agent, code: str) -> bool:
    """Check a code against the agent's enrolled secret and spend it (caller commits)."""
    if not agent.totp_secret:
        return False
    try:
        secret = decrypt_secret(settings, agent.totp_secret)
    except Exception:
        return False
    step = verify_code(secret, code, last_step=agent.totp_last_step)
    if step is None:
        return False
    agent.totp_last_step = step
    return True


def _serializer(settings: Settings, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key.get_secret_value(), salt=salt)


def sign(settings: Settings, salt: str, value: dict[str, Any]) -> str:
    return _serializer(settings, salt).dumps(value)


def unsign(settings: Settings, salt: str, token: str | None, max_age: int) -> dict[str, Any] | None:
    if not token or len(token) > 2000:
        return None
    try:
        value = _serializer(settings, salt).loads(token, max_age=max_age)
    except (BadSignature, SignatureExpired):
        return None
    return value if isinstance(value, dict) else None
