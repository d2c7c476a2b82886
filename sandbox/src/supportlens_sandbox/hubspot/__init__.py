"""HubSpot CRM simulator over the demo world (see `app.create_hubspot_app`)."""

from supportlens_sandbox.hubspot.app import (
    HUBSPOT_PORTAL_ID,
    HUBSPOT_READONLY_TOKEN,
    HUBSPOT_TOKEN,
    create_hubspot_app,
)

__all__ = ["HUBSPOT_PORTAL_ID", "HUBSPOT_READONLY_TOKEN", "HUBSPOT_TOKEN", "create_hubspot_app"]
