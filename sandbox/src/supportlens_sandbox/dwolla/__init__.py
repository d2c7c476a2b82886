"""Dwolla API simulator over the demo world (see `app.create_dwolla_app`)."""

from supportlens_sandbox.dwolla.app import DWOLLA_KEY, DWOLLA_SECRET, HAL, create_dwolla_app

__all__ = ["DWOLLA_KEY", "DWOLLA_SECRET", "HAL", "create_dwolla_app"]
