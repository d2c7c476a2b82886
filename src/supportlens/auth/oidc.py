"""Single sign-on with OpenID Connect (Authlib's Starlette client): Microsoft Entra ID by default.

Authorization code flow with state, nonce and PKCE (S256). The state data Authlib keeps between the
redirect and the callback lives in a short-lived signed, HttpOnly cookie scoped to /auth/oidc (no
server-side session store needed, works on every replica). An identity signs in only as an *invited*
agent: an existing, active account with the same e-mail; the e-mail must be verified by the identity
provider (`email_verified`, or Entra's `xms_edov` optional claim). There is no self sign-up.

Entra ID setup: a single-tenant app registration, redirect URI `<base_url>/auth/oidc/callback`, optional
ID-token claims `email` and `xms_edov`; SUPPORTLENS_OIDC_ENABLED=true, SUPPORTLENS_OIDC_TENANT_ID,
SUPPORTLENS_OIDC_CLIENT_ID, SUPPORTLENS_OIDC_CLIENT_SECRET (or ..._FILE). Any other provider:
SUPPORTLENS_OIDC_DISCOVERY_URL.
"""

from __future__ import annotations

from typing import Annotated, Any

from authlib.integrations.starlette_client import OAuth, OAuthError
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from supportlens.audit import service as audit
from supportlens.auth import service
from supportlens.auth.deps import DbDep, LoginThrottleDep, SettingsDep
from supportlens.auth.views import complete_login, safe_next
from supportlens.config import Settings
from supportlens.deps import per_app
from supportlens.logging import get_logger
from supportlens.web.pages import render

router = APIRouter(tags=["auth"], include_in_schema=False)
log = get_logger("supportlens.oidc")

STATE_COOKIE = "sl_oidc"
STATE_MAX_AGE = 600
CLIENT_NAME = "sso"
ENTRA_DISCOVERY = "https://login.microsoftonline.com/{tenant}/v2.0/.well-known/openid-configuration"


def discovery_url(settings: Settings) -> str:
    if settings.oidc_discovery_url:
        return settings.oidc_discovery_url
    if not settings.oidc_tenant_id:
        raise RuntimeError(
            "single sign-on needs SUPPORTLENS_OIDC_TENANT_ID or SUPPORTLENS_OIDC_DISCOVERY_URL"
        )
    return ENTRA_DISCOVERY.format(tenant=settings.oidc_tenant_id)


class OidcClients:
    """One Authlib client per app (it caches the provider's metadata and keys), registered on the first
    sign-in: a missing tenant then fails that sign-in, not the app's start."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._oauth: OAuth | None = None

    def client(self) -> Any:
        if self._oauth is None:
            settings = self._settings
            oauth = OAuth()
            oauth.register(
                CLIENT_NAME,
                client_id=settings.oidc_client_id,
                client_secret=settings.oidc_client_secret.get_secret_value(),
                server_metadata_url=discovery_url(settings),
                client_kwargs={
                    "scope": "openid email profile",
                    "code_challenge_method": "S256",
                    "timeout": 10,
                },
            )
            self._oauth = oauth
        return self._oauth.create_client(CLIENT_NAME)


OidcClientsDep = Annotated[OidcClients, Depends(per_app("oidc_clients", OidcClients))]


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret_key.get_secret_value(), salt="oidc-state")


def _load_state(request: Request, settings: Settings) -> dict[str, Any]:
    raw = request.cookies.get(STATE_COOKIE)
    if not raw or len(raw) > 8000:
        return {}
    try:
        value = _serializer(settings).loads(raw, max_age=STATE_MAX_AGE)
    except BadSignature:
        return {}
    return value if isinstance(value, dict) else {}


def _redirect_uri(request: Request, settings: Settings) -> str:
    return settings.base_url.rstrip("/") + "/auth/oidc/callback"


def refusal(request: Request, message: str, status_code: int = 403) -> HTMLResponse:
    response = render(request, "auth/sso_refused.html", {"message": message}, status_code=status_code)
    response.delete_cookie(STATE_COOKIE, path="/auth/oidc")
    return response


@router.get("/auth/oidc/login")
async def oidc_login(
    request: Request, settings: SettingsDep, clients: OidcClientsDep, next: str = ""
) -> Response:
    if not settings.oidc_enabled:
        return refusal(request, "Single sign-on is not turned on for this SupportLens.", 404)
    request.scope["session"] = {}
    try:
        client = clients.client()
        response = await client.authorize_redirect(request, _redirect_uri(request, settings))
    except Exception as exc:  # discovery or network failure: say so, never a 500
        log.warning("oidc_unavailable", error=type(exc).__name__)
        return refusal(
            request, "The sign-in service cannot be reached right now. Try again in a minute.", 502
        )
    state = dict(request.scope["session"])
    state["next"] = safe_next(next) if next else "/"
    response.set_cookie(
        STATE_COOKIE,
        _serializer(settings).dumps(state),
        max_age=STATE_MAX_AGE,
        httponly=True,
        samesite="lax",  # sent on the provider's top-level redirect back to us
        secure=settings.cookies_secure,
        path="/auth/oidc",
    )
    return response


def verified_email(claims: dict[str, Any]) -> str | None:
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email:
        return None
    if claims.get("email_verified") is True or claims.get("xms_edov") in (True, "1", 1, "true"):
        return email.strip().lower()
    return None


@router.get("/auth/oidc/callback")
async def oidc_callback(
    request: Request, db: DbDep, settings: SettingsDep, clients: OidcClientsDep, throttle: LoginThrottleDep
) -> Response:
    if not settings.oidc_enabled:
        return refusal(request, "Single sign-on is not turned on for this SupportLens.", 404)
    state = _load_state(request, settings)
    next_url = str(state.pop("next", "/"))
    request.scope["session"] = state
    try:
        client = clients.client()
        token = await client.authorize_access_token(request)
        claims: dict[str, Any] = dict(token.get("userinfo") or {})
        if not claims.get("email"):
            claims.update(await client.userinfo(token=token))
    except OAuthError as exc:
        await audit.record(
            db,
            "login_failed",
            request=request,
            target_type="agent",
            outcome="denied",
            detail={"method": "sso", "reason": (exc.error or "oauth_error")[:64]},
        )
        return refusal(
            request, "Single sign-on did not complete (the request expired or was refused). Try again."
        )
    except Exception as exc:
        log.warning("oidc_callback_failed", error=type(exc).__name__)
        return refusal(
            request, "The sign-in service cannot be reached right now. Try again in a minute.", 502
        )

    email = verified_email(claims)
    agent = await service.get_agent_by_email(db, email) if email else None
    if agent is None or not agent.active:
        reason = "unverified_email" if email is None else ("no_account" if agent is None else "inactive")
        await audit.record(
            db,
            "login_failed",
            request=request,
            actor=agent,
            actor_email=(email or str(claims.get("email") or ""))[:254] or None,
            target_type="agent",
            outcome="denied",
            detail={"method": "sso", "reason": reason},
        )
        who = email or "your account"
        message = (
            f"{who} has no SupportLens account. Ask an administrator to invite you; accounts are not created "
            "at sign-in."
        )
        if reason == "unverified_email":
            message = (
                "Your identity provider did not confirm your e-mail address, so SupportLens cannot match it."
            )
        elif reason == "inactive":
            message = "Your SupportLens account is turned off. Ask an administrator."
        return refusal(request, message)

    response = await complete_login(
        request, db, settings, agent, method="sso", next_url=next_url, throttle=throttle
    )
    response.delete_cookie(STATE_COOKIE, path="/auth/oidc")
    return response
