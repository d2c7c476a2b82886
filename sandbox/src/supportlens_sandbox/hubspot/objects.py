"""The demo world as HubSpot CRM objects: contacts, companies, deals, tickets, owners, associations."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import phonenumbers

from supportlens_sandbox.world import Customer, World

# Canonical object type names and their aliases in paths (name, singular, object type id).
OBJECT_TYPES = {
    "contacts": ("contacts", "contact", "0-1"),
    "companies": ("companies", "company", "0-2"),
    "deals": ("deals", "deal", "0-3"),
    "tickets": ("tickets", "ticket", "0-5"),
    "notes": ("notes", "note", "0-46"),
}
SINGULAR = {
    "contacts": "contact",
    "companies": "company",
    "deals": "deal",
    "tickets": "ticket",
    "notes": "note",
}
OBJECT_TYPE_IDS = {name: aliases[2] for name, aliases in OBJECT_TYPES.items()}


def canonical_type(name: str) -> str | None:
    lowered = name.lower()
    for canonical, aliases in OBJECT_TYPES.items():
        if lowered in aliases:
            return canonical
    return None


# HubSpot-defined association type ids: (from, to) -> [(typeId, label)] (None label = unlabeled).
ASSOCIATION_TYPES: dict[tuple[str, str], list[tuple[int, str | None]]] = {
    ("contacts", "companies"): [(279, None)],
    ("companies", "contacts"): [(280, None)],
    ("contacts", "deals"): [(4, None)],
    ("deals", "contacts"): [(3, None)],
    ("contacts", "tickets"): [(15, None)],
    ("tickets", "contacts"): [(16, None)],
    ("companies", "deals"): [(342, None)],
    ("deals", "companies"): [(341, None)],
    ("companies", "tickets"): [(340, None)],
    ("tickets", "companies"): [(339, None)],
    # Notes (engagements): HubSpot's documented defaults, one id per direction.
    ("notes", "contacts"): [(202, None)],
    ("contacts", "notes"): [(201, None)],
    ("notes", "tickets"): [(228, None)],
    ("tickets", "notes"): [(227, None)],
    ("notes", "companies"): [(190, None)],
    ("companies", "notes"): [(189, None)],
    ("notes", "deals"): [(214, None)],
    ("deals", "notes"): [(213, None)],
}
# Which (from, to) pair each HUBSPOT_DEFINED type id names.
ASSOCIATION_PAIRS: dict[int, tuple[str, str]] = {
    type_id: pair for pair, types in ASSOCIATION_TYPES.items() for type_id, _ in types
}
PRIMARY_TYPES: dict[tuple[str, str], int] = {
    ("contacts", "companies"): 1,
    ("companies", "contacts"): 2,
    ("deals", "companies"): 5,
    ("companies", "deals"): 6,
    ("tickets", "companies"): 26,
    ("companies", "tickets"): 25,
}

# Properties returned when a request names none.
DEFAULT_PROPERTIES = {
    "contacts": ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
    "companies": ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
    "deals": (
        "amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate",
        "hs_object_id", "pipeline",
    ),
    "tickets": (
        "content", "createdate", "hs_lastmodifieddate", "hs_object_id", "hs_pipeline", "hs_pipeline_stage",
        "hs_ticket_category", "hs_ticket_priority", "subject",
    ),
    "notes": ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
}  # fmt: skip
# Always present in search results, whatever was asked for.
ALWAYS_IN_SEARCH = {
    "contacts": ("createdate", "hs_object_id", "lastmodifieddate"),
    "companies": ("createdate", "hs_lastmodifieddate", "hs_object_id"),
    "deals": ("createdate", "hs_lastmodifieddate", "hs_object_id"),
    "tickets": ("createdate", "hs_lastmodifieddate", "hs_object_id"),
    "notes": ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
}
# Searched by the free-text `query`.
SEARCHABLE = {
    "contacts": ("firstname", "lastname", "email", "hs_additional_emails", "phone", "mobilephone", "company"),
    "companies": ("name", "domain", "website", "phone"),
    "deals": ("dealname", "pipeline", "dealstage", "description", "dealtype"),
    "tickets": ("subject", "content", "hs_pipeline_stage", "hs_ticket_category", "hs_ticket_id"),
    "notes": ("hs_note_body",),
}
PHONE_PROPERTIES = {"phone", "mobilephone", "hs_searchable_calculated_phone_number"}
NUMBER_PROPERTIES = {
    "hs_object_id", "amount", "associatedcompanyid", "num_associated_contacts", "num_associated_deals",
    "hs_ticket_id", "num_associated_tickets",
}  # fmt: skip
DATETIME_PROPERTIES = {
    "createdate",
    "lastmodifieddate",
    "hs_lastmodifieddate",
    "closedate",
    "hs_lastcontacted",
    "hs_createdate",
    "hs_timestamp",
}

KNOWN_PROPERTIES = {
    "contacts": {
        "email", "firstname", "lastname", "phone", "mobilephone", "company", "jobtitle", "lifecyclestage",
        "hubspot_owner_id", "dwolla_id", "onboarding_step", "onboarding_status", "city", "state", "address",
        "zip", "associatedcompanyid", "createdate", "lastmodifieddate", "hs_object_id", "hs_email_domain",
        "hs_additional_emails", "hs_searchable_calculated_phone_number", "num_associated_deals", "website",
    },
    "companies": {
        "name", "domain", "website", "phone", "industry", "city", "state", "lifecyclestage",
        "hubspot_owner_id", "dwolla_id", "onboarding_step", "onboarding_status", "createdate",
        "hs_lastmodifieddate", "hs_object_id", "num_associated_contacts", "num_associated_deals",
        "description",
    },
    "deals": {
        "dealname", "amount", "dealstage", "pipeline", "closedate", "hubspot_owner_id", "createdate",
        "hs_lastmodifieddate", "hs_object_id", "description", "dealtype",
    },
    "tickets": {
        "subject", "content", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_priority", "hs_ticket_category",
        "hubspot_owner_id", "createdate", "hs_lastmodifieddate", "hs_object_id", "hs_ticket_id",
    },
    "notes": {
        "hs_timestamp", "hs_note_body", "hubspot_owner_id", "hs_attachment_ids", "hs_createdate",
        "hs_lastmodifieddate", "hs_object_id",
    },
}  # fmt: skip
# Properties a caller may set on a note (the rest are HubSpot's own).
NOTE_WRITABLE = {"hs_timestamp", "hs_note_body", "hubspot_owner_id", "hs_attachment_ids"}
NOTE_BODY_MAX = 65_536  # characters, per HubSpot's notes guide

JOB_TITLES = (
    "Finance Manager", "Controller", "Operations Lead", "CEO", "Founder", "Accounts Payable Specialist",
    "Office Manager", "CFO", "Bookkeeper", "Head of Payments",
)  # fmt: skip


def hs_datetime(value: datetime) -> str:
    """HubSpot's timestamp form: 2026-11-18T12:34:56.789Z."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def stored_phone(customer: Customer, index: int) -> str:
    """Phones are stored as people typed them: a mix of international, national and E.164 forms."""
    parsed = phonenumbers.parse(customer.phone)
    style = index % 3
    if style == 0:
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    if style == 1:
        return customer.phone_display
    return customer.phone


@dataclass
class HsObject:
    type: str
    id: str
    properties: dict[str, str | None]
    created: datetime
    updated: datetime
    archived: bool = False
    # to type -> [(to id, [(typeId, label, category)])]
    associations: dict[str, list[tuple[str, list[tuple[int, str | None]]]]] = field(default_factory=dict)

    def dissociate(self, to_type: str, to_id: str) -> None:
        self.associations[to_type] = [a for a in self.associations.get(to_type, []) if a[0] != to_id]

    def associate(self, to_type: str, to_id: str, primary: bool = False) -> None:
        types = list(ASSOCIATION_TYPES[(self.type, to_type)])
        if primary and (self.type, to_type) in PRIMARY_TYPES:
            types.insert(0, (PRIMARY_TYPES[(self.type, to_type)], "Primary"))
        existing = self.associations.setdefault(to_type, [])
        for i, (other, known) in enumerate(existing):
            if other == to_id:
                existing[i] = (other, known + [t for t in types if t not in known])
                return
        existing.append((to_id, types))


@dataclass
class HsOwner:
    id: str
    email: str
    first_name: str
    last_name: str
    user_id: int
    created: datetime


@dataclass
class HubSpotData:
    objects: dict[str, dict[str, HsObject]]
    owners: list[HsOwner]
    # Archived ("deleted") objects: gone from reads and associations, kept here as HubSpot keeps them.
    archived: dict[str, dict[str, HsObject]] = field(default_factory=dict)

    def archive(self, kind: str, object_id: str) -> bool:
        obj = self.objects[kind].pop(object_id, None)
        if obj is None:
            return False
        obj.archived = True
        for to_kind, links in obj.associations.items():
            for to_id, _ in links:
                other = self.objects[to_kind].get(to_id)
                if other is not None:
                    other.dissociate(kind, object_id)
        self.archived.setdefault(kind, {})[object_id] = obj
        return True


def build(world: World) -> HubSpotData:
    objects: dict[str, dict[str, HsObject]] = {name: {} for name in OBJECT_TYPES}
    company_of_contact: dict[str, str] = {}
    for company in world.companies:
        props: dict[str, str | None] = {
            "name": company.name,
            "domain": company.domain,
            "website": f"https://www.{company.domain}",
            "phone": company.phone,
            "industry": company.industry,
            "city": company.city,
            "state": company.state,
            "lifecyclestage": company.lifecycle_stage,
            "hubspot_owner_id": company.owner_id,
            "dwolla_id": company.dwolla_id,
            "onboarding_step": company.onboarding_step,
            "onboarding_status": company.onboarding_status,
            "createdate": hs_datetime(company.created),
            "hs_lastmodifieddate": hs_datetime(company.updated),
            "hs_object_id": company.hubspot_id,
            "num_associated_contacts": str(len(company.contact_ids)),
            "num_associated_deals": str(len(company.deal_ids)) if company.deal_ids else None,
            "description": None,
        }
        objects["companies"][company.hubspot_id] = HsObject(
            "companies", company.hubspot_id, props, company.created, company.updated
        )
        for contact_id in company.contact_ids:
            company_of_contact[contact_id] = company.hubspot_id
    for index, customer in enumerate(world.customers):
        cid = customer.hubspot_contact_id
        if cid is None:
            continue
        domain = customer.email.split("@", 1)[1]
        updated = world.now - (world.now - customer.created) / 7
        props = {
            "email": customer.email,
            "firstname": customer.first_name,
            "lastname": customer.last_name,
            "phone": stored_phone(customer, index),
            "mobilephone": None,
            "company": customer.company,
            "jobtitle": JOB_TITLES[index % len(JOB_TITLES)],
            "lifecyclestage": customer.lifecycle_stage,
            "hubspot_owner_id": customer.owner.id if customer.owner else None,
            "dwolla_id": customer.hubspot_dwolla_id,
            "onboarding_step": customer.onboarding_step,
            "onboarding_status": customer.onboarding_status,
            "address": customer.address1,
            "city": customer.city,
            "state": customer.state,
            "zip": customer.postal_code,
            "associatedcompanyid": customer.hubspot_company_id,
            "createdate": hs_datetime(customer.created),
            "lastmodifieddate": hs_datetime(updated),
            "hs_object_id": cid,
            "hs_email_domain": domain,
            "hs_additional_emails": None,
            "hs_searchable_calculated_phone_number": _national_digits(customer.phone),
            "num_associated_deals": str(len(customer.deal_ids)) if customer.deal_ids else None,
            "website": None,
        }
        contact = HsObject("contacts", cid, props, customer.created, updated)
        objects["contacts"][cid] = contact
        company_id = company_of_contact.get(cid)
        if company_id:
            contact.associate("companies", company_id, primary=True)
            objects["companies"][company_id].associate("contacts", cid, primary=True)
    for deal in world.deals.values():
        props = {
            "dealname": deal.name,
            "amount": f"{deal.amount:f}",
            "dealstage": deal.stage,
            "pipeline": deal.pipeline,
            "closedate": hs_datetime(
                datetime.combine(deal.close_date, datetime.min.time(), world.now.tzinfo)
            ),
            "hubspot_owner_id": deal.owner_id,
            "createdate": hs_datetime(deal.created),
            "hs_lastmodifieddate": hs_datetime(deal.updated),
            "hs_object_id": deal.id,
            "description": None,
            "dealtype": "newbusiness" if deal.stage != "closedwon" else "existingbusiness",
        }
        obj = HsObject("deals", deal.id, props, deal.created, deal.updated)
        objects["deals"][deal.id] = obj
        if deal.company_id:
            obj.associate("companies", deal.company_id, primary=True)
            objects["companies"][deal.company_id].associate("deals", deal.id, primary=True)
        for contact_id in deal.contact_ids:
            obj.associate("contacts", contact_id)
            objects["contacts"][contact_id].associate("deals", deal.id)
    for ticket in world.tickets.values():
        props = {
            "subject": ticket.subject,
            "content": ticket.content,
            "hs_pipeline": ticket.pipeline,
            "hs_pipeline_stage": ticket.stage,
            "hs_ticket_priority": ticket.priority,
            "hs_ticket_category": None,
            "hubspot_owner_id": ticket.owner_id,
            "createdate": hs_datetime(ticket.created),
            "hs_lastmodifieddate": hs_datetime(ticket.updated),
            "hs_object_id": ticket.id,
            "hs_ticket_id": ticket.id,
        }
        obj = HsObject("tickets", ticket.id, props, ticket.created, ticket.updated)
        objects["tickets"][ticket.id] = obj
        if ticket.company_id:
            obj.associate("companies", ticket.company_id, primary=True)
            objects["companies"][ticket.company_id].associate("tickets", ticket.id, primary=True)
        for contact_id in ticket.contact_ids:
            obj.associate("contacts", contact_id)
            objects["contacts"][contact_id].associate("tickets", ticket.id)
    owners = [
        HsOwner(
            o.id,
            o.email,
            o.first_name,
            o.last_name,
            9_100_000 + i,
            world.now.replace(year=world.now.year - 2),
        )
        for i, o in enumerate(world.owners)
    ]
    return HubSpotData(objects=objects, owners=owners)


def _national_digits(e164: str) -> str:
    parsed = phonenumbers.parse(e164)
    return str(parsed.national_number)
