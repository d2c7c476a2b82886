"""Fixtures for tests that send sessions: a registered site (with or without required consent)."""

from tests.support.ingest import consent_site_key, site_key

__all__ = ["consent_site_key", "site_key"]
