"""The agents' decisions read as labels, and the calibration report built from them (PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.mapping.calibration import CalibrationReport, Label, report
from supportlens.sessions.models import SessionCustomerMapping

# Decisions made before the engine's prediction was kept with them (migration 0016_mapping_labels).
UNKNOWN_PREDICTION = "unknown"


async def decision_labels(db: AsyncSession) -> list[Label]:
    """One label per decided pair, with what the engine had said before the first decision."""
    m = SessionCustomerMapping
    rows = await db.execute(
        select(m.manual_decision, m.auto_method, m.auto_confidence).where(
            m.manual_decision.is_not(None), m.auto_method.is_distinct_from(UNKNOWN_PREDICTION)
        )
    )
    return [
        Label(method=method, confidence=confidence, correct=decision == "link")
        for decision, method, confidence in rows
    ]


async def calibration_report(
    db: AsyncSession, *, threshold: float, possible_floor: float | None = None
) -> CalibrationReport:
    return report(await decision_labels(db), threshold=threshold, possible_floor=possible_floor)
