"""Who may call each route: the table the route x role test (test_route_matrix.py) checks.

EVERY route of the app must have a row here; a route without one fails the build. Add one row per
(method, path template) when you add a route, with the least role that may use it:

    PUBLIC  - no sign-in (login, health, ingest, the SDK, static files, API docs)
    VIEWER  - any signed-in agent (viewers see PII masked)
    AGENT   - agents and admins: every write, opening recordings, exports
    ADMIN   - administrators only (every /admin page and admin API)

Paths are the route templates exactly as FastAPI lists them, e.g. "/api/clarity/sessions/{session_id}".
SAMPLE_PARAMS gives the value used for a path parameter when the test calls the route; the test seeds a
real session, event, annotation and customer so handlers reach their role checks.
"""

from __future__ import annotations

PUBLIC, VIEWER, AGENT, ADMIN = "public", "viewer", "agent", "admin"

# Routes that call a vendor while the agent waits and answer 502 (problem details) when it does not
# answer. The matrix runs with no vendor reachable, so for these a 502 shows the role check let the
# call through; any other 5xx is still a failure.
VENDOR_502: set[tuple[str, str]] = {
    ("GET", "/api/clarity/sessions/{session_id}/hubspot-note"),
    ("POST", "/api/clarity/sessions/{session_id}/hubspot-note"),
}

RULES: dict[tuple[str, str], str] = {
    # ---- app level (FastAPI docs, static files)
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("MOUNT", "/static"): PUBLIC,
    # ---- health
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    # ---- auth (security)
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("GET", "/login/totp"): PUBLIC,
    ("POST", "/login/totp"): PUBLIC,
    ("GET", "/set-password/{token}"): PUBLIC,
    ("POST", "/set-password/{token}"): PUBLIC,
    ("GET", "/auth/oidc/login"): PUBLIC,
    ("GET", "/auth/oidc/callback"): PUBLIC,
    ("POST", "/logout"): VIEWER,
    ("GET", "/api/me"): VIEWER,
    ("GET", "/account/security"): VIEWER,
    ("POST", "/account/totp/enable"): VIEWER,
    ("POST", "/account/totp/disable"): VIEWER,
    ("POST", "/account/theme"): VIEWER,  # an agent's own colour scheme
    ("GET", "/admin"): ADMIN,
    ("GET", "/admin/agents"): ADMIN,
    ("POST", "/admin/agents/{agent_id}/role"): ADMIN,
    ("POST", "/admin/agents/{agent_id}/unlock"): ADMIN,
    ("POST", "/admin/agents/{agent_id}/totp-reset"): ADMIN,
    ("POST", "/admin/agents/invite"): ADMIN,
    ("POST", "/admin/agents/{agent_id}/password-link"): ADMIN,
    ("POST", "/admin/agents/{agent_id}/deactivate"): ADMIN,
    ("POST", "/admin/agents/{agent_id}/reactivate"): ADMIN,
    # ---- audit and privacy (security)
    ("GET", "/admin/audit"): ADMIN,
    ("GET", "/admin/audit/export"): ADMIN,
    ("DELETE", "/api/customers/{email}"): ADMIN,
    ("GET", "/admin/erasure"): ADMIN,
    ("POST", "/admin/erasure/preview"): ADMIN,
    ("POST", "/admin/erasure"): ADMIN,
    # ---- home and search
    ("GET", "/"): VIEWER,
    ("GET", "/api/search"): VIEWER,
    ("GET", "/api/search/history"): VIEWER,
    ("DELETE", "/api/search/history"): VIEWER,  # an agent's own history
    ("GET", "/search/panel/{panel}"): VIEWER,
    ("GET", "/search/history"): VIEWER,
    ("DELETE", "/search/history"): VIEWER,
    # ---- mapping
    ("POST", "/api/clarity/sessions/map"): AGENT,
    ("DELETE", "/api/clarity/sessions/map"): AGENT,
    ("POST", "/partials/mapping/link"): AGENT,
    ("POST", "/partials/mapping/unlink"): AGENT,
    # possible sessions: confirm (a manual link) or dismiss (a manual unlink)
    ("POST", "/api/clarity/sessions/{session_id}/confirm"): AGENT,
    ("POST", "/api/clarity/sessions/{session_id}/dismiss"): AGENT,
    ("POST", "/partials/mapping/confirm"): AGENT,
    ("POST", "/partials/mapping/dismiss"): AGENT,
    # ---- capture: public ingest and SDK, sessions API, sites admin
    ("GET", "/sdk/v1/supportlens.js"): PUBLIC,
    ("OPTIONS", "/api/ingest/v1/events"): PUBLIC,
    ("POST", "/api/ingest/v1/events"): PUBLIC,
    ("GET", "/api/clarity/sessions"): VIEWER,
    ("GET", "/api/clarity/sessions/{session_id}"): VIEWER,
    ("GET", "/api/clarity/sessions/{session_id}/events"): VIEWER,
    ("GET", "/api/clarity/sessions/{session_id}/recording"): AGENT,  # viewers cannot open recordings
    ("GET", "/partials/sessions"): VIEWER,
    ("GET", "/admin/sites"): ADMIN,
    ("POST", "/admin/sites"): ADMIN,
    ("POST", "/admin/sites/{site_id}/revoke"): ADMIN,
    # ---- investigation
    ("GET", "/api/clarity/sessions/{session_id}/timeline"): VIEWER,
    ("GET", "/api/clarity/sessions/{session_id}/analytics"): VIEWER,
    ("GET", "/api/clarity/sessions/{session_id}/heatmap"): VIEWER,
    ("GET", "/api/clarity/sessions/{session_id}/annotations"): VIEWER,
    ("POST", "/api/clarity/sessions/{session_id}/annotate"): AGENT,
    ("GET", "/api/clarity/sessions/{session_id}/hubspot-note"): AGENT,
    ("POST", "/api/clarity/sessions/{session_id}/hubspot-note"): AGENT,
    ("PATCH", "/api/clarity/sessions/{session_id}/annotations/{annotation_id}"): AGENT,
    ("DELETE", "/api/clarity/sessions/{session_id}/annotations/{annotation_id}"): AGENT,
    ("GET", "/api/clarity/sessions/{session_id}/export"): AGENT,  # viewers cannot export
    ("GET", "/api/customers/{email}/sessions"): VIEWER,
    ("GET", "/api/customers/{email}/analytics"): VIEWER,
    ("GET", "/api/customers/{email}/heatmap"): VIEWER,
    ("GET", "/api/customers/{email}/export"): AGENT,  # viewers cannot export
    ("GET", "/api/customers/{email}/journey"): VIEWER,
    ("GET", "/sessions/{session_id}"): VIEWER,
    ("GET", "/sessions/{session_id}/panel"): VIEWER,
    ("GET", "/customers/{email}/journey"): VIEWER,
    ("GET", "/customers/{email}/analytics"): VIEWER,
    ("GET", "/admin/goals"): ADMIN,
    ("POST", "/admin/goals"): ADMIN,
    ("POST", "/admin/goals/{goal_id}/delete"): ADMIN,
    # ---- clarity
    ("GET", "/admin/clarity"): ADMIN,
    ("POST", "/admin/clarity/pull"): ADMIN,
    ("GET", "/api/admin/clarity/connection"): ADMIN,
    ("GET", "/admin/mapping"): ADMIN,
    ("GET", "/api/admin/mapping/report"): ADMIN,
    # ---- issues
    ("GET", "/api/issues"): VIEWER,
    ("GET", "/api/issues/{issue_id}"): VIEWER,
    ("PATCH", "/api/issues/{issue_id}"): AGENT,
    ("GET", "/issues"): VIEWER,
    ("GET", "/issues/{issue_id}"): VIEWER,
    ("POST", "/issues/{issue_id}/status"): AGENT,
    # ---- spike alerts
    ("GET", "/admin/alerts"): ADMIN,
    ("POST", "/admin/alerts"): ADMIN,
    ("GET", "/issues/spiking"): VIEWER,
    ("GET", "/issues/{issue_id}/compare"): VIEWER,
    ("GET", "/sessions/{session_id}/compare"): VIEWER,
    ("GET", "/reports/weekly"): VIEWER,
    ("GET", "/reports/weekly.csv"): VIEWER,
    ("GET", "/reports/weekly.json"): VIEWER,
    # ---- attention: Dwolla webhooks (signed by Dwolla, no sign-in) and the Needs attention queue
    ("POST", "/api/webhooks/dwolla"): PUBLIC,
    ("GET", "/api/attention"): VIEWER,
    ("POST", "/api/attention/{case_id}/take"): AGENT,
    ("POST", "/api/attention/{case_id}/close"): AGENT,
    ("GET", "/partials/attention"): VIEWER,
    ("POST", "/partials/attention/{case_id}/{action}"): AGENT,
    ("GET", "/admin/webhooks"): ADMIN,
    ("POST", "/admin/webhooks"): ADMIN,
}

# Values for path parameters. "{seeded:...}" values are filled by the test with the ids it created.
SAMPLE_PARAMS: dict[str, str] = {
    "session_id": "{seeded:session_id}",
    "annotation_id": "{seeded:annotation_id}",
    "email": "{seeded:email}",
    "agent_id": "{seeded:agent_id}",
    "panel": "hubspot",
    "issue_id": "1",
}
# Any other parameter gets a fresh UUID.
