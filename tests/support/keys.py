"""The secret key the tests' apps are built with (conftest.build_settings), and the mapping engine's
keyed hashes on it, for helpers that record mapping facts without an app."""

from __future__ import annotations

from supportlens.mapping.facts import FactKeys

TEST_SECRET_KEY = "test-secret-key-not-for-production"
TEST_FACT_KEYS = FactKeys(TEST_SECRET_KEY.encode())
