"""A successful checkout beside the seeded failing one, an issue naming the failing one, a goal and
a spike: what the comparison page, the weekly-ish home section and the alerts page show."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from supportlens.issues.alert_models import AlertDelivery, SpikeAlert, SpikeSeries
from supportlens.issues.models import Issue, IssueBucket, IssueOccurrence, IssueSession
from supportlens.issues.spikes import SpikeState
from supportlens.sessions.goals import ConversionGoal
from supportlens.sessions.models import SessionEvent, UserSession

SHOP = "https://shop.example"


async def seed_comparison(sessionmaker: Any, failing_id: uuid.UUID, start: datetime) -> int:
    """Returns the issue's id."""
    sid = uuid.uuid4()
    begin = start - timedelta(hours=3)
    steps = [
        ("navigation", f"{SHOP}/", None, {"title": "Shop home"}),
        ("navigation", f"{SHOP}/products", None, {"title": "Products"}),
        ("click", f"{SHOP}/products", "a.product-card", {"text": "Savings plan"}),
        ("navigation", f"{SHOP}/pay", None, {"title": "Pay"}),
        ("form_submit", f"{SHOP}/pay", "form#pay", {}),
        ("navigation", f"{SHOP}/thanks", None, {"title": "Thank you"}),
    ]
    async with sessionmaker() as db:
        db.add(ConversionGoal(kind="url", value="/thanks", label="Payment done"))
        db.add(
            UserSession(
                id=sid,
                clarity_project_id="proj1",
                clarity_user_id="user2",
                clarity_session_id="s2ok",
                session_start=begin,
                session_end=begin + timedelta(minutes=4),
                duration_seconds=240,
                page_views=4,
                entry_url=f"{SHOP}/",
                exit_url=f"{SHOP}/thanks",
                device_type="mobile",
                browser="Safari",
                os="iOS",
            )
        )
        await db.flush()
        for i, (kind, url, selector, data) in enumerate(steps):
            db.add(
                SessionEvent(
                    id=uuid.uuid4(),
                    session_id=sid,
                    event_type=kind,
                    event_data=data,
                    timestamp=begin + timedelta(seconds=20 * i),
                    page_url=url,
                    element_selector=selector,
                )
            )
        issue = Issue(
            fingerprint="fp-e2e-pay",
            kind="error",
            title="TypeError: Cannot read properties of undefined (reading 'amount')",
            page="/pay",
            first_seen=start,
            last_seen=start,
            event_count=12,
            session_count=1,
        )
        db.add(issue)
        await db.flush()
        db.add(IssueSession(issue_id=issue.id, session_id=failing_id, first_seen=start))
        db.add(
            IssueOccurrence(
                event_id=uuid.uuid4(),
                issue_id=issue.id,
                session_id=failing_id,
                occurred_at=start,
                page="/pay",
            )
        )
        rage = Issue(
            fingerprint="fp-e2e-rage",
            kind="rage_click",
            title="Rage clicks on button#later",
            page="/pay",
            element="button#later",
            first_seen=start,
            last_seen=start,
            event_count=3,
            session_count=1,
        )
        db.add(rage)
        await db.flush()
        db.add(
            IssueBucket(
                issue_id=rage.id,
                page="/pay",
                bucket_start=start.replace(second=0, microsecond=0) - timedelta(minutes=start.minute % 5),
                count=3,
            )
        )
        now = datetime.now(tz=UTC).replace(second=0, microsecond=0)
        bucket = now - timedelta(minutes=now.minute % 5 + 5)
        db.add(
            SpikeSeries(
                key=f"issue:{issue.id}",
                issue_id=issue.id,
                last_bucket=bucket,
                state={**SpikeState().__dict__, "alerting": True},
            )
        )
        alert = SpikeAlert(
            series_key=f"issue:{issue.id}",
            issue_id=issue.id,
            bucket_start=bucket,
            window_buckets=2,
            observed=41,
            expected=6.2,
            p_value=2e-8,
        )
        db.add(alert)
        await db.flush()
        db.add(
            AlertDelivery(
                kind="spike",
                dedup_key=f"spike:{alert.id}",
                alert_id=alert.id,
                status="delivered",
                attempts=1,
                last_status_code=200,
                payload={"text": f"Spiking now: issue #{issue.id} {issue.title}: 41 in 10 min, 6.2 expected"},
            )
        )
        await db.commit()
        return issue.id
