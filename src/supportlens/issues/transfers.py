"""Failed transfers near an issue: the affected customers' failed Dwolla transfers created within 30
minutes of one of their occurrences (`issues.trouble.pair_up`, the rule the search page uses).

Why on read, through the search service: SupportLens stores no Dwolla transfers (Dwolla is the record;
its webhooks only trigger work), so the transfers come from Dwolla's API. The search service already
asks Dwolla per customer e-mail, under its deadline, and keeps the answer in its cache, so an issue page
opened after a search (or twice) costs no Dwolla call. The number of customers asked is bounded
(MAX_CUSTOMERS_ASKED, the latest affected), and the count found is kept on the issue for the list.
Dwolla failing for a customer degrades this panel only: the count is then a lower bound, and says so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from supportlens.issues import reads
from supportlens.issues.reads import AffectedCustomer
from supportlens.issues.trouble import Failure, failures_from_dwolla, minutes_apart, pair_up

MAX_CUSTOMERS_ASKED = 10
MAX_SHOWN = 20


@dataclass(frozen=True)
class NearTransfer:
    failure: Failure
    email: str
    occurred_at: datetime  # the customer's occurrence nearest the transfer
    minutes: int


@dataclass
class TransfersNear:
    transfers: list[NearTransfer] = field(default_factory=list)
    asked: int = 0  # customers whose transfers were read
    unanswered: int = 0  # customers Dwolla did not answer for
    error: str | None = None  # in plain words, when some did not answer

    @property
    def complete(self) -> bool:
        return self.unanswered == 0


async def failed_transfers_near(
    db: AsyncSession,
    search: Any,
    issue_id: int,
    customers: Sequence[AffectedCustomer],
    *,
    min_confidence: float,
    now: datetime,
) -> TransfersNear:
    """Ask Dwolla (through the search service's cache) for the latest affected customers' transfers."""
    from supportlens.customers.query import parse_query

    emails = [c.email for c in customers[:MAX_CUSTOMERS_ASKED]]
    out = TransfersNear(asked=len(emails))
    if not emails:
        await reads.record_failed_transfers(db, issue_id, 0, now=now)
        return out
    answers = await asyncio.gather(*(search.source("dwolla", parse_query(e)) for e in emails))
    when = await reads.customer_occurrences(db, issue_id, emails, min_confidence=min_confidence)
    plain: str | None = None
    seen: set[str] = set()
    for email, answer in zip(emails, answers, strict=True):
        if answer.status != "ok":
            out.unanswered += 1
            plain = plain or answer.plain or answer.error
            continue
        # A Dwolla search by e-mail can find others with a similar address: this customer's only.
        failures = [f for f in failures_from_dwolla(answer.items) if (f.customer_email or "") == email]
        for f, at, delta in pair_up(((f, f.at) for f in failures), ((t, t) for t in when.get(email, []))):
            if f.transfer_id in seen:
                continue
            seen.add(f.transfer_id)
            out.transfers.append(NearTransfer(f, email, at, minutes_apart(delta)))
    out.transfers.sort(key=lambda t: t.failure.at, reverse=True)
    if plain:
        out.error = f"Dwolla {plain}"
    if out.complete:
        await reads.record_failed_transfers(db, issue_id, len(out.transfers), now=now)
    out.transfers = out.transfers[:MAX_SHOWN]
    return out
