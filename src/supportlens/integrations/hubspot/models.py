"""Pydantic models of HubSpot CRM v3/v4 JSON (every property value arrives as a string or null)."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

CONTACT_PROPERTIES = [
    "firstname",
    "lastname",
    "email",
    "phone",
    "mobilephone",
    "company",
    "jobtitle",
    "lifecyclestage",
    "hs_lead_status",
    "hubspot_owner_id",
    "dwolla_id",
    "onboarding_step",
    "onboarding_status",
    "createdate",
    "lastmodifieddate",
]
COMPANY_PROPERTIES = [
    "name",
    "domain",
    "phone",
    "industry",
    "lifecyclestage",
    "hubspot_owner_id",
    "dwolla_id",
    "onboarding_step",
    "onboarding_status",
    "createdate",
]
DEAL_PROPERTIES = ["dealname", "amount", "dealstage", "pipeline", "closedate", "createdate"]
TICKET_PROPERTIES = [
    "subject",
    "content",
    "hs_pipeline_stage",
    "hs_ticket_priority",
    "hs_ticket_category",
    "createdate",
]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class CrmObject(_Wire):
    """One object as HubSpot returns it: `{id, properties, createdAt, updatedAt, archived}`."""

    id: str
    properties: dict[str, str | None] = Field(default_factory=dict)
    created_at: datetime | None = Field(default=None, alias="createdAt")
    updated_at: datetime | None = Field(default=None, alias="updatedAt")
    archived: bool = False
    associations: dict[str, AssociationList] | None = None

    def prop(self, name: str) -> str | None:
        value = self.properties.get(name)
        if value is None:
            return None
        value = str(value).strip()
        return value or None


class AssociationRef(_Wire):
    id: str
    type: str | None = None


class AssociationList(_Wire):
    results: list[AssociationRef] = Field(default_factory=list)


class NextPage(_Wire):
    after: str
    link: str | None = None


class Paging(_Wire):
    next: NextPage | None = None


class SearchResponse(_Wire):
    total: int = 0
    results: list[CrmObject]
    paging: Paging | None = None


class BatchResponse(_Wire):
    status: str | None = None
    results: list[CrmObject]


class WireOwner(_Wire):
    id: str
    email: str | None = None
    first_name: str | None = Field(default=None, alias="firstName")
    last_name: str | None = Field(default=None, alias="lastName")

    @property
    def display_name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p) or (self.email or self.id)


class OwnersPage(_Wire):
    results: list[WireOwner]
    paging: Paging | None = None


class V4AssociationType(_Wire):
    category: str | None = None
    type_id: int | None = Field(default=None, alias="typeId")
    label: str | None = None


class V4Association(_Wire):
    to_object_id: int | str = Field(alias="toObjectId")
    association_types: list[V4AssociationType] = Field(default_factory=list, alias="associationTypes")


class V4AssociationsResponse(_Wire):
    results: list[V4Association]
    paging: Paging | None = None


# ----------------------------------------------------------------------------- what the app uses


class _Out(BaseModel):
    """Our own models: camelCase in JSON (`model_dump(by_alias=True)`), snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class HubSpotContact(_Out):
    id: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    mobile_phone: str | None = None
    company: str | None = None
    job_title: str | None = None
    lifecycle_stage: str | None = None
    lead_status: str | None = None
    owner_id: str | None = None
    owner_name: str | None = None
    dwolla_id: str | None = None
    onboarding_step: str | None = None
    onboarding_status: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)

    @classmethod
    def from_object(cls, obj: CrmObject) -> HubSpotContact:
        email = obj.prop("email")
        return cls(
            id=obj.id,
            first_name=obj.prop("firstname"),
            last_name=obj.prop("lastname"),
            email=email.lower() if email else None,
            phone=obj.prop("phone"),
            mobile_phone=obj.prop("mobilephone"),
            company=obj.prop("company"),
            job_title=obj.prop("jobtitle"),
            lifecycle_stage=obj.prop("lifecyclestage"),
            lead_status=obj.prop("hs_lead_status"),
            owner_id=obj.prop("hubspot_owner_id"),
            dwolla_id=obj.prop("dwolla_id"),
            onboarding_step=obj.prop("onboarding_step"),
            onboarding_status=obj.prop("onboarding_status"),
            created_at=obj.created_at,
            updated_at=obj.updated_at,
        )


class HubSpotCompany(_Out):
    id: str
    name: str | None = None
    domain: str | None = None
    phone: str | None = None
    industry: str | None = None
    lifecycle_stage: str | None = None
    owner_id: str | None = None
    dwolla_id: str | None = None
    onboarding_step: str | None = None
    onboarding_status: str | None = None

    @classmethod
    def from_object(cls, obj: CrmObject) -> HubSpotCompany:
        return cls(
            id=obj.id,
            name=obj.prop("name"),
            domain=obj.prop("domain"),
            phone=obj.prop("phone"),
            industry=obj.prop("industry"),
            lifecycle_stage=obj.prop("lifecyclestage"),
            owner_id=obj.prop("hubspot_owner_id"),
            dwolla_id=obj.prop("dwolla_id"),
            onboarding_step=obj.prop("onboarding_step"),
            onboarding_status=obj.prop("onboarding_status"),
        )


class HubSpotDeal(_Out):
    id: str
    name: str | None = None
    amount: str | None = None  # kept as HubSpot sends it (a decimal string)
    stage: str | None = None
    pipeline: str | None = None
    close_date: str | None = None

    @classmethod
    def from_object(cls, obj: CrmObject) -> HubSpotDeal:
        return cls(
            id=obj.id,
            name=obj.prop("dealname"),
            amount=obj.prop("amount"),
            stage=obj.prop("dealstage"),
            pipeline=obj.prop("pipeline"),
            close_date=obj.prop("closedate"),
        )


class HubSpotTicket(_Out):
    id: str
    subject: str | None = None
    content: str | None = None
    stage: str | None = None
    priority: str | None = None
    category: str | None = None
    created: str | None = None

    @classmethod
    def from_object(cls, obj: CrmObject) -> HubSpotTicket:
        return cls(
            id=obj.id,
            subject=obj.prop("subject"),
            content=obj.prop("content"),
            stage=obj.prop("hs_pipeline_stage"),
            priority=obj.prop("hs_ticket_priority"),
            category=obj.prop("hs_ticket_category"),
            created=obj.prop("createdate"),
        )


class HubSpotContactBundle(_Out):
    contact: HubSpotContact
    companies: list[HubSpotCompany] = Field(default_factory=list)
    deals: list[HubSpotDeal] = Field(default_factory=list)
    tickets: list[HubSpotTicket] = Field(default_factory=list)

    @property
    def dwolla_id(self) -> str | None:
        """The Dwolla customer id kept in HubSpot: on the contact, else on its company."""
        if self.contact.dwolla_id:
            return self.contact.dwolla_id
        for company in self.companies:
            if company.dwolla_id:
                return company.dwolla_id
        return None


CrmObject.model_rebuild()


# ----------------------------------------------------------------------------- notes and account

# HubSpot-defined association type ids (v4, category HUBSPOT_DEFINED) for a note's links.
NOTE_TO_CONTACT = 202
NOTE_TO_TICKET = 228
NOTE_PROPERTIES = ["hs_timestamp", "hs_note_body", "hubspot_owner_id", "hs_lastmodifieddate"]
OBJECT_TYPE_IDS = {"contacts": "0-1", "companies": "0-2", "deals": "0-3", "tickets": "0-5", "notes": "0-46"}


class WireAccountDetails(_Wire):
    portal_id: int = Field(alias="portalId")
    ui_domain: str | None = Field(default=None, alias="uiDomain")
    time_zone: str | None = Field(default=None, alias="timeZone")


class HubSpotAccount(_Out):
    """The HubSpot account (portal) behind our token: what links into HubSpot's own pages need."""

    portal_id: int
    ui_domain: str = "app.hubspot.com"
    time_zone: str | None = None

    def record_url(self, object_type: str, object_id: str) -> str:
        """The page of one record in HubSpot, e.g. a contact (its timeline shows its notes) or a ticket."""
        type_id = OBJECT_TYPE_IDS[object_type]
        return f"https://{self.ui_domain}/contacts/{self.portal_id}/record/{type_id}/{object_id}"


class HubSpotNote(_Out):
    id: str
    body_html: str | None = None
    timestamp: datetime | None = None
    owner_id: str | None = None
    updated_at: datetime | None = None
    contact_ids: list[str] = Field(default_factory=list)
    ticket_ids: list[str] = Field(default_factory=list)

    @classmethod
    def from_object(cls, obj: CrmObject) -> HubSpotNote:
        stamp = obj.prop("hs_timestamp")
        assoc = obj.associations or {}

        def ids(kind: str) -> list[str]:
            found = assoc.get(kind)
            return list(dict.fromkeys(a.id for a in found.results)) if found else []

        return cls(
            id=obj.id,
            body_html=obj.properties.get("hs_note_body"),
            timestamp=_hs_time(stamp),
            owner_id=obj.prop("hubspot_owner_id"),
            updated_at=obj.updated_at,
            contact_ids=ids("contacts"),
            ticket_ids=ids("tickets"),
        )


def _hs_time(value: str | None) -> datetime | None:
    """A HubSpot datetime property: ISO 8601, or Unix milliseconds in older records."""
    if not value:
        return None
    try:
        if value.isdigit():
            return datetime.fromtimestamp(int(value) / 1000, UTC)
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return None
