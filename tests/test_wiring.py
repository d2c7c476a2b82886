"""How the product is wired (docs/architecture.md, "Dependencies, settings and what a viewer sees"):
shared resources are built in app.py and read through the dependency providers; settings are read where
the process starts, then passed; what a viewer may see is decided by web/viewer.py alone."""

from __future__ import annotations

import re
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src" / "supportlens"

# app.py builds what goes on app.state; these read it: the dependency providers, and render (the
# layout's settings in every template's context).
READS_APP_STATE = {"app.py", "deps.py", "auth/deps.py", "web/pages.py"}
# Where a process starts: the command line, the app factory, the migrations; config.py defines it and
# the embedded PostgreSQL clears its cache when it sets the database URL.
READS_GLOBAL_SETTINGS = {"app.py", "cli.py", "config.py", "db/migrations/env.py", "db/embedded.py"}
# The masks themselves: shown to viewers only through web/viewer.py; the others mask before storage
# (ingest, fingerprints, the audit log's reasons) or in logs.
USES_MASKS = {
    "web/viewer.py",
    "masking.py",
    "capture/ingest.py",
    "issues/fingerprint.py",
    "logging.py",
    "mapping/views.py",
}


def _modules_matching(pattern: str) -> set[str]:
    found = set()
    for path in SRC.rglob("*.py"):
        if re.search(pattern, path.read_text(encoding="utf-8")):
            found.add(path.relative_to(SRC).as_posix())
    return found


def test_app_state_is_read_only_by_the_composition_root_and_the_providers() -> None:
    assert _modules_matching(r"app\.state\b") <= READS_APP_STATE


def test_settings_are_read_globally_only_where_a_process_starts() -> None:
    assert _modules_matching(r"get_settings\(\)") <= READS_GLOBAL_SETTINGS


def test_viewers_see_pii_only_through_the_one_rule() -> None:
    assert _modules_matching(r"\b(mask_email|mask_phone|mask_pii_text)\b") <= USES_MASKS
