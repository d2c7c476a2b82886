"""Pair HubSpot contacts with Dwolla customers: by the Dwolla id kept in HubSpot, then e-mail, then name.

Each pair gets a confidence and the list of places where the two systems disagree, so an agent sees at
once that, say, HubSpot still has an old e-mail or Dwolla suspended a customer HubSpot calls active.
"""

from __future__ import annotations

import re
import unicodedata
from difflib import SequenceMatcher
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from supportlens.integrations.dwolla.models import DwollaCustomer
from supportlens.integrations.hubspot.models import HubSpotContactBundle

Method = Literal["dwolla_id", "email", "name"]
NAME_THRESHOLD = 0.85
DONE_ONBOARDING = frozenset({"complete", "completed", "done", "verified", "approved", "live", "active"})
OPEN_ONBOARDING = frozenset({"pending", "in_progress", "in progress", "started", "not_started", "blocked"})
DWOLLA_BLOCKED = frozenset({"suspended", "deactivated"})
DWOLLA_UNFINISHED = frozenset({"unverified", "retry", "kba", "document"})


class _Out(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Inconsistency(_Out):
    field: str
    hubspot: str | None = None
    dwolla: str | None = None
    message: str


class Match(_Out):
    hubspot_contact_id: str
    dwolla_customer_id: str
    method: Method
    confidence: float
    name: str | None = None
    email: str | None = None
    inconsistencies: list[Inconsistency] = Field(default_factory=list)


class Correlation(_Out):
    status: Literal["matched", "unmatched", "empty", "unavailable"]
    matches: list[Match] = Field(default_factory=list)
    unmatched_hubspot: list[str] = Field(default_factory=list)
    unmatched_dwolla: list[str] = Field(default_factory=list)
    best_email: str | None = None
    note: str | None = None


def normalize_name(value: str | None) -> str:
    """Case, accents, punctuation and word order removed: "Doe, Jané" == "jane doe"."""
    if not value:
        return ""
    text = unicodedata.normalize("NFKD", value)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    words = re.findall(r"[a-z0-9]+", text)
    return " ".join(sorted(words))


def name_similarity(a: str | None, b: str | None) -> float:
    na, nb = normalize_name(a), normalize_name(b)
    if not na or not nb:
        return 0.0
    if na == nb:
        return 1.0
    return SequenceMatcher(None, na, nb).ratio()


def _customer_name(c: DwollaCustomer) -> str:
    return c.name or (c.business_name or "")


def _inconsistencies(
    bundle: HubSpotContactBundle, customer: DwollaCustomer, method: Method
) -> list[Inconsistency]:
    contact = bundle.contact
    found: list[Inconsistency] = []
    h_email, d_email = (contact.email or "").lower(), (customer.email or "").lower()
    if h_email and d_email and h_email != d_email:
        found.append(Inconsistency(field="email", hubspot=h_email, dwolla=d_email, message="E-mail differs"))
    h_name, d_name = contact.name, customer.name
    if h_name and d_name and h_name.casefold().split() != d_name.casefold().split():
        message = (
            "Name spelled differently"
            if name_similarity(h_name, d_name) >= NAME_THRESHOLD
            else "Name differs"
        )
        found.append(Inconsistency(field="name", hubspot=h_name, dwolla=d_name, message=message))
    hubspot_dwolla_id = bundle.dwolla_id
    if not hubspot_dwolla_id:
        found.append(
            Inconsistency(
                field="dwolla_id", dwolla=customer.id, message="HubSpot has no Dwolla id for this customer"
            )
        )
    elif hubspot_dwolla_id != customer.id:
        found.append(
            Inconsistency(
                field="dwolla_id",
                hubspot=hubspot_dwolla_id,
                dwolla=customer.id,
                message="HubSpot's Dwolla id points to another Dwolla customer",
            )
        )
    status = (customer.status or "").lower()
    onboarding = _onboarding_status(bundle)
    if status in DWOLLA_BLOCKED and (contact.lifecycle_stage or "").lower() == "customer":
        found.append(
            Inconsistency(
                field="status",
                hubspot=contact.lifecycle_stage,
                dwolla=customer.status,
                message=f"HubSpot lists an active customer; Dwolla says {status}",
            )
        )
    if onboarding and onboarding.lower() in DONE_ONBOARDING and status in DWOLLA_UNFINISHED | DWOLLA_BLOCKED:
        found.append(
            Inconsistency(
                field="status",
                hubspot=onboarding,
                dwolla=customer.status,
                message=f"HubSpot says onboarding is {onboarding}; Dwolla status is {status}",
            )
        )
    if onboarding and onboarding.lower() in OPEN_ONBOARDING and status == "verified":
        found.append(
            Inconsistency(
                field="status",
                hubspot=onboarding,
                dwolla=customer.status,
                message=f"Dwolla verified the customer; HubSpot onboarding still says {onboarding}",
            )
        )
    companies = [c.name for c in bundle.companies if c.name] or ([contact.company] if contact.company else [])
    if (
        customer.business_name
        and companies
        and all(name_similarity(customer.business_name, c) < NAME_THRESHOLD for c in companies)
    ):
        found.append(
            Inconsistency(
                field="company",
                hubspot=companies[0],
                dwolla=customer.business_name,
                message="Company differs from the Dwolla business name",
            )
        )
    return found


def _onboarding_status(bundle: HubSpotContactBundle) -> str | None:
    if bundle.contact.onboarding_status:
        return bundle.contact.onboarding_status
    for company in bundle.companies:
        if company.onboarding_status:
            return company.onboarding_status
    return None


def correlate(
    hubspot: list[HubSpotContactBundle] | None,
    dwolla: list[DwollaCustomer] | None,
    *,
    query_email: str | None = None,
) -> Correlation:
    """Greedy pairing in three passes of decreasing strength; each record is used at most once."""
    if hubspot is None or dwolla is None:
        missing = "HubSpot" if hubspot is None else "Dwolla"
        best = query_email or _first_email(hubspot or [], dwolla or [])
        return Correlation(status="unavailable", best_email=best, note=f"{missing} did not answer")
    if not hubspot and not dwolla:
        return Correlation(status="empty", best_email=query_email)
    free_h = {b.contact.id: b for b in hubspot}
    free_d = {c.id: c for c in dwolla}
    matches: list[Match] = []

    def pair(
        bundle: HubSpotContactBundle, customer: DwollaCustomer, method: Method, confidence: float
    ) -> None:
        free_h.pop(bundle.contact.id, None)
        free_d.pop(customer.id, None)
        issues = _inconsistencies(bundle, customer, method)
        # Each disagreement costs a little certainty, never below the method's floor.
        penalty = 0.03 * len([i for i in issues if i.field != "dwolla_id"])
        floor = {"dwolla_id": 0.85, "email": 0.7, "name": 0.4}[method]
        matches.append(
            Match(
                hubspot_contact_id=bundle.contact.id,
                dwolla_customer_id=customer.id,
                method=method,
                confidence=round(max(confidence - penalty, floor), 2),
                name=bundle.contact.name or customer.name or None,
                email=bundle.contact.email or customer.email,
                inconsistencies=issues,
            )
        )

    for bundle in list(free_h.values()):
        dwolla_id = bundle.dwolla_id
        if dwolla_id and dwolla_id in free_d:
            pair(bundle, free_d[dwolla_id], "dwolla_id", 0.99)
    for bundle in list(free_h.values()):
        email = (bundle.contact.email or "").lower()
        if not email:
            continue
        for customer in list(free_d.values()):
            if (customer.email or "").lower() == email:
                same_name = name_similarity(bundle.contact.name, customer.name) >= NAME_THRESHOLD
                pair(bundle, customer, "email", 0.92 if same_name else 0.85)
                break
    for bundle in list(free_h.values()):
        scored = [
            (name_similarity(bundle.contact.name, _customer_name(c)), c)
            for c in free_d.values()
            if bundle.contact.name
        ]
        scored = [(s, c) for s, c in scored if s >= NAME_THRESHOLD]
        if not scored:
            continue
        score, customer = max(scored, key=lambda sc: sc[0])
        # 0.85 similarity -> 0.5, identical names -> 0.75: a name alone is weak evidence.
        pair(bundle, customer, "name", 0.5 + (score - NAME_THRESHOLD) / (1 - NAME_THRESHOLD) * 0.25)

    matches.sort(key=lambda m: m.confidence, reverse=True)
    best = matches[0].email if matches and matches[0].email else query_email or _first_email(hubspot, dwolla)
    if query_email:
        best = query_email
    return Correlation(
        status="matched" if matches else "unmatched",
        matches=matches,
        unmatched_hubspot=list(free_h),
        unmatched_dwolla=list(free_d),
        best_email=best,
    )


def _first_email(hubspot: list[HubSpotContactBundle], dwolla: list[DwollaCustomer]) -> str | None:
    for b in hubspot:
        if b.contact.email:
            return b.contact.email
    for c in dwolla:
        if c.email:
            return c.email
    return None
