"""Every Clarity URL format the product builds: the session player and the project's heatmaps page."""

from __future__ import annotations

from urllib.parse import urlsplit

DEFAULT_ORIGIN = "https://clarity.microsoft.com"


def recording_url(base: str, project_id: str, user_id: str, session_id: str) -> str:
    """Clarity's player for one session: `/player/{project}/{user}/{session}`."""
    return f"{base.rstrip('/')}/player/{project_id}/{user_id}/{session_id}"


def heatmaps_url(project_id: str, *, base: str = DEFAULT_ORIGIN, recording: str | None = None) -> str:
    """The project's heatmaps page, on the host of the session's recording link when there is one."""
    origin = base.rstrip("/")
    if recording:
        parts = urlsplit(recording)
        if parts.scheme in ("http", "https") and parts.netloc:
            origin = f"{parts.scheme}://{parts.netloc}"
    return f"{origin}/projects/view/{project_id}/heatmaps"
