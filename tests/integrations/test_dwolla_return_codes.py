"""ACH return codes in plain words: the codes agents meet, and a fallback for the rest."""

from __future__ import annotations

import re

from supportlens.integrations.dwolla.return_codes import ACH_RETURN_CODES, describe
from supportlens_sandbox.world import ACH_RETURNS


def test_every_code_agents_meet_is_in_plain_words() -> None:
    required = {f"R{n:02d}" for n in range(1, 11)} | {"R16", "R20", "R29"}
    assert required <= set(ACH_RETURN_CODES)
    for code, entry in ACH_RETURN_CODES.items():
        assert re.fullmatch(r"R\d\d", code) and entry.code == code
        assert entry.plain and entry.plain == entry.plain.strip() and entry.plain[0].islower(), code
        assert entry.next_step.endswith("."), code
    assert describe("R01").plain.startswith("insufficient funds")  # type: ignore[union-attr]
    assert describe(" r10 ").code == "R10"  # type: ignore[union-attr]


def test_titles_match_what_the_dwolla_simulator_sends() -> None:
    for code, (title, _) in ACH_RETURNS.items():
        assert ACH_RETURN_CODES[code].title == title


def test_an_unknown_code_keeps_dwollas_title_and_escalates() -> None:
    entry = describe("R85", "Incorrectly Coded Outbound International Payment")
    assert entry is not None and entry.code == "R85"
    assert entry.plain == "incorrectly coded outbound international payment"
    assert "Escalate" in entry.next_step
    assert describe("X9<script>") is not None and describe("X9<script>").code == "X9<SCRIP"  # type: ignore[union-attr]
    assert describe(None) is None and describe("") is None
