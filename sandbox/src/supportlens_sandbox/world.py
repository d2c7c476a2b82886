"""The deterministic demo world shared by the HubSpot and Dwolla simulators, the demo and the tests.

`demo_world(seed=7, now=None)` returns the same people, companies, ids, e-mails, phones, funding
sources, transfers, deals and tickets for the same seed. Dates are offsets from `now` (default: the
fixed `ANCHOR`), so passing a different `now` moves every date and changes nothing else. Worlds
are cached per (seed, now, size): treat them as read-only. `supportlens demo` uses now = today.

Headline customers (always first in `World.customers`, in this order; their Dwolla and HubSpot ids
are fixed and do not depend on the seed):

1. Jane Doe <jane@acme.io>, Acme Inc, +1 415-555-0101. Dwolla verified personal customer, `dwolla_id`
   on her HubSpot contact. Her newest transfer ($225.00, 2 days before `now`) FAILED with ACH
   return R01 "Insufficient Funds"; an open HubSpot ticket is about it.
2. John Smith <john.smith@acme.io>, Acme Inc, +1 415-555-0102. Dwolla verified business customer
   (business name "Acme Inc"); his Dwolla id is also the `dwolla_id` of the Acme Inc company.
   Healthy: processed and pending transfers, an open deal.
3. Maria Garcia <maria@globex.com>, Globex Corporation, +1 212-555-0147. E-MAIL DIFFERS: Dwolla has
   maria.garcia@globex.com. Linked by `dwolla_id`. Verified.
4. Robert Chen <robert@initech.com>, Initech, +1 512-555-0133. NAME DIFFERS: Dwolla has "Bob Chen".
   Linked by `dwolla_id`. A transfer failed with R03 "No Account/Unable to Locate Account" and that
   bank account was removed.
5. Priya Patel <priya@umbrella.health>, Umbrella Health, +1 617-555-0188. Dwolla status SUSPENDED.
   NO `dwolla_id` in HubSpot (match by e-mail only).
6. Olivia Brown <olivia@hooli.dev>, Hooli, +1 650-555-0110. HUBSPOT ONLY (a lead; no Dwolla record).
7. Lucas Martin <lucas@piedpiper.io>, +1 650-555-0175. DWOLLA ONLY (unverified; no HubSpot contact).
8. Emma Wilson <emma@starkindustries.co>, Stark Industries, +1 213-555-0164. Dwolla status DOCUMENT
   (verification needs a document); onboarding blocked.
9. Noah Johnson <noah@wayneenterprises.co>, Wayne Enterprises, +1 312-555-0129. Dwolla status
   RETRY. Has a removed bank account and an R02 "Account Closed" return.
10. Sophia Lee <sophia@umbrella.health>, Umbrella Health, +1 617-555-0190. Dwolla DEACTIVATED.

The rest (more than 200 in all) are generated from the seed: companies with one to six contacts,
a mix of Dwolla types and statuses (verified, unverified, receive-only, retry, document, kba,
suspended, deactivated), funding sources (some removed, balances for verified customers), transfers
over the last 90 days (pending, processed, failed with ACH returns, cancelled), deals and tickets,
and deliberate inconsistencies listed per customer in `Customer.inconsistencies`
("email_differs", "name_differs", "missing_dwolla_id", "dwolla_only", "hubspot_only").
"""

from __future__ import annotations

import hashlib
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache

import phonenumbers

ANCHOR = datetime(2026, 11, 20, 15, 0, 0, tzinfo=UTC)

# The platform's own Dwolla account (the other side of every customer transfer).
ACCOUNT_ID = "a9c2e0f4-6c1b-4f0e-9d8a-3b7f5e2d1c01"
ACCOUNT_NAME = "SupportLens Demo Platform"
ACCOUNT_BALANCE_FS_ID = "b1f7d2a8-0e44-4c3a-8f7d-5a6b9c0d1e02"
ACCOUNT_BANK_FS_ID = "c3a8e1b9-7d55-4b2c-9e6f-4a5b8c9d0e03"
BUSINESS_CLASSIFICATION = "9ed3f670-7d6f-11e3-b1ce-5404a6144203"

LIFECYCLE_STAGES = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
)
ONBOARDING_STEPS = ("signup", "identity_verification", "bank_linking", "first_transfer", "live")
DEAL_STAGES = (
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
    "closedwon",
    "closedlost",
)
DEAL_KINDS = ("Annual plan", "Payouts add-on", "Expansion", "Renewal")
# HubSpot's default ticket pipeline "0": 1 New, 2 Waiting on contact, 3 Waiting on us, 4 Closed.
TICKET_STAGES = ("1", "2", "3", "4")

ACH_RETURNS: dict[str, tuple[str, str]] = {
    "R01": (
        "Insufficient Funds",
        "The available and/or cash reserve balance is not sufficient to cover the dollar value of the "
        "debit entry.",
    ),
    "R02": ("Account Closed", "A previously active account has been closed by customer or RDFI."),
    "R03": (
        "No Account/Unable to Locate Account",
        "The account number does not correspond to the individual identified in the entry or a valid "
        "account.",
    ),
    "R04": (
        "Invalid Account Number",
        "The account number fails the check digit validation or may contain an incorrect number of digits.",
    ),
    "R08": ("Payment Stopped", "The receiver has placed a stop payment order on this debit entry."),
    "R10": (
        "Customer Advises Not Authorized",
        "The receiver advises that the originator is not authorized to debit the account.",
    ),
    "R16": (
        "Account Frozen",
        "Access to the account is restricted due to specific action taken by the RDFI.",
    ),
    "R20": (
        "Non-Transaction Account",
        "The ACH entry is destined for a non-transaction account, which prohibits transactions.",
    ),
}


@dataclass(frozen=True)
class Owner:
    id: str
    first_name: str
    last_name: str
    email: str

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass
class FundingSource:
    id: str
    customer_dwolla_id: str
    name: str
    type: str  # bank | balance
    status: str  # verified | unverified
    created: datetime
    removed: bool = False
    bank_account_type: str | None = None  # checking | savings (banks only)
    bank_name: str | None = None
    fingerprint: str | None = None
    channels: tuple[str, ...] = ("ach",)
    balance: Decimal | None = None  # balance funding sources of verified customers


@dataclass
class Transfer:
    id: str
    customer_dwolla_id: str
    direction: str  # debit: customer pays the platform; credit: the platform pays the customer
    status: str  # pending | processed | failed | cancelled
    amount: Decimal
    created: datetime
    customer_funding_source_id: str
    correlation_id: str
    currency: str = "USD"
    clearing: str = "standard"
    note: str = ""
    failure_code: str | None = None

    @property
    def amount_value(self) -> str:
        return f"{self.amount:.2f}"

    @property
    def failure_description(self) -> str | None:
        return ACH_RETURNS[self.failure_code][0] if self.failure_code else None

    @property
    def failure_explanation(self) -> str | None:
        return ACH_RETURNS[self.failure_code][1] if self.failure_code else None

    @property
    def source_is_customer(self) -> bool:
        return self.direction == "debit"


@dataclass
class Deal:
    id: str
    name: str
    amount: Decimal
    stage: str
    close_date: date
    created: datetime
    updated: datetime
    owner_id: str
    company_id: str | None
    contact_ids: list[str] = field(default_factory=list)
    pipeline: str = "default"


@dataclass
class Ticket:
    id: str
    subject: str
    content: str
    stage: str
    priority: str  # LOW | MEDIUM | HIGH | URGENT
    created: datetime
    updated: datetime
    owner_id: str
    company_id: str | None
    contact_ids: list[str] = field(default_factory=list)
    pipeline: str = "0"


@dataclass
class Company:
    hubspot_id: str
    name: str
    domain: str
    phone: str
    industry: str
    city: str
    state: str
    owner_id: str
    created: datetime
    updated: datetime
    lifecycle_stage: str = "customer"
    dwolla_id: str | None = None  # the custom HubSpot property `dwolla_id`
    onboarding_step: str = "live"
    onboarding_status: str = "complete"
    contact_ids: list[str] = field(default_factory=list)
    deal_ids: list[str] = field(default_factory=list)
    ticket_ids: list[str] = field(default_factory=list)


@dataclass
class Customer:
    """One person as support sees them; `hubspot_*` and `dwolla_*` describe each system's record."""

    email: str  # as in HubSpot (or in Dwolla for Dwolla-only customers)
    first_name: str
    last_name: str
    phone: str  # E.164, e.g. +14155550101
    phone_display: str  # national display form, e.g. (415) 555-0101
    company: str | None
    created: datetime
    # HubSpot side (None when the customer is only in Dwolla)
    hubspot_contact_id: str | None
    hubspot_company_id: str | None
    lifecycle_stage: str | None
    owner: Owner | None
    hubspot_dwolla_id: str | None  # the contact's `dwolla_id` property as stored in HubSpot
    onboarding_step: str | None
    onboarding_status: str | None
    # Dwolla side (None when the customer is only in HubSpot)
    dwolla_id: str | None
    dwolla_type: str | None  # unverified | personal | business | receive-only
    dwolla_status: str | None  # unverified | retry | kba | document | verified | suspended | deactivated
    dwolla_email: str | None
    dwolla_first_name: str | None
    dwolla_last_name: str | None
    dwolla_business_name: str | None
    dwolla_business_type: str | None  # llc | corporation | soleProprietorship (business customers)
    address1: str
    city: str
    state: str
    postal_code: str
    funding_sources: list[FundingSource] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)  # newest first
    deal_ids: list[str] = field(default_factory=list)
    ticket_ids: list[str] = field(default_factory=list)
    inconsistencies: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def in_hubspot(self) -> bool:
        return self.hubspot_contact_id is not None

    @property
    def in_dwolla(self) -> bool:
        return self.dwolla_id is not None

    @property
    def failed_transfers(self) -> list[Transfer]:
        return [t for t in self.transfers if t.status == "failed"]


@dataclass
class World:
    now: datetime
    seed: int
    customers: list[Customer]
    companies: list[Company]
    owners: list[Owner]
    deals: dict[str, Deal]
    tickets: dict[str, Ticket]

    def __post_init__(self) -> None:
        self.by_email = {c.email.lower(): c for c in self.customers}
        self.by_contact_id = {c.hubspot_contact_id: c for c in self.customers if c.hubspot_contact_id}
        self.by_dwolla_id = {c.dwolla_id: c for c in self.customers if c.dwolla_id}
        self.companies_by_id = {c.hubspot_id: c for c in self.companies}
        self.owners_by_id = {o.id: o for o in self.owners}
        self.funding_sources = {fs.id: fs for c in self.customers for fs in c.funding_sources}
        self.transfers = {t.id: t for c in self.customers for t in c.transfers}

    def customer(self, email: str) -> Customer:
        """The customer with this (HubSpot-side) e-mail; KeyError when unknown."""
        return self.by_email[email.lower()]

    @property
    def hubspot_customers(self) -> list[Customer]:
        return [c for c in self.customers if c.in_hubspot]

    @property
    def dwolla_customers(self) -> list[Customer]:
        return [c for c in self.customers if c.in_dwolla]


# --------------------------------------------------------------------------------------------------
# Generation

OWNERS = (
    Owner("71230001", "Alex", "Rivera", "alex.rivera@supportlens.demo"),
    Owner("71230002", "Morgan", "Blake", "morgan.blake@supportlens.demo"),
    Owner("71230003", "Casey", "Nguyen", "casey.nguyen@supportlens.demo"),
    Owner("71230004", "Jordan", "Okafor", "jordan.okafor@supportlens.demo"),
    Owner("71230005", "Taylor", "Schmidt", "taylor.schmidt@supportlens.demo"),
    Owner("71230006", "Riley", "Kowalski", "riley.kowalski@supportlens.demo"),
)

FIRST_NAMES = (
    "Liam", "Ava", "Ethan", "Mia", "Mason", "Isabella", "Logan", "Amelia", "James", "Harper", "Benjamin",
    "Evelyn", "Elijah", "Abigail", "Aiden", "Ella", "Jackson", "Scarlett", "Sebastian", "Grace", "Mateo",
    "Chloe", "Henry", "Victoria", "Owen", "Riley", "Samuel", "Aria", "Daniel", "Lily", "Carter", "Aubrey",
    "Wyatt", "Zoey", "Jayden", "Hannah", "Gabriel", "Layla", "Julian", "Nora", "Levi", "Hazel", "Isaac",
    "Ellie", "Anthony", "Stella", "Dylan", "Lucy", "Leo", "Savannah", "Katherine", "John", "Sarah",
    "Steven", "Geoffrey", "Mohammed", "Zoe", "Renee", "Kenji", "Aisha", "Diego", "Fatima", "Hiroshi",
    "Ingrid", "Kwame", "Lars", "Mei", "Nikolai", "Oksana", "Rahul"
)  # fmt: skip
LAST_NAMES = (
    "Anderson", "Thomas", "Jackson", "White", "Harris", "Thompson", "Moore", "Martinez", "Robinson",
    "Clark", "Rodriguez", "Lewis", "Walker", "Hall", "Allen", "Young", "Hernandez", "King", "Wright",
    "Lopez", "Hill", "Scott", "Green", "Adams", "Baker", "Gonzalez", "Nelson", "Carter", "Mitchell",
    "Perez", "Roberts", "Turner", "Phillips", "Campbell", "Parker", "Evans", "Edwards", "Collins",
    "Stewart", "Sanchez", "Morris", "Rogers", "Reed", "Cook", "Morgan", "Bell", "Murphy", "Bailey",
    "Rivera", "Cooper", "Richardson", "Cox", "Howard", "Ward", "Torres", "Peterson", "Gray", "Ramirez",
    "McDonald", "O'Brien", "Nakamura", "Okonkwo", "Lindqvist", "Novak", "Haddad", "Kim", "Singh"
)  # fmt: skip
# Spelling variants used for deliberate name differences between HubSpot and Dwolla.
NAME_VARIANTS = {
    "Katherine": "Catherine",
    "John": "Jon",
    "Sarah": "Sara",
    "Steven": "Stephen",
    "Geoffrey": "Jeffrey",
    "Mohammed": "Muhammad",
    "Zoe": "Zoë",
    "Renee": "Renée",
    "McDonald": "Mcdonald",
    "O'Brien": "OBrien",
    "Isabella": "Isabela",
    "Elijah": "Eli",
    "Benjamin": "Ben",
    "Samuel": "Sam",
    "Daniel": "Dan",
    "Victoria": "Vicky",
}
COMPANY_WORDS = (
    "Northwind", "Contoso", "Fabrikam", "Tailspin", "Wingtip", "Litware", "Adventure", "Proseware",
    "Lamna", "Woodgrove", "Fourth Coffee", "Alpine Ski", "Blue Yonder", "Coho Vineyard", "Graphic Design",
    "Humongous", "Margie's Travel", "Nod Publishers", "Southridge", "Trey Research", "Vanarsdel",
    "Wide World", "Bellows", "Cyberdyne", "Soylent", "Tyrell", "Massive Dynamic", "Vandelay", "Prestige",
    "Dunder", "Sterling", "Bluth", "Gringotts", "Oscorp", "Nakatomi", "Monarch", "Rekall", "Virtucon",
    "Duff", "Krusty", "Gekko", "Ollivander", "Spacely", "Cogswell", "Wonka", "Zorg", "Hanso", "Dharma",
    "Aperture", "Black Mesa", "Yoyodyne", "Rich", "Omni", "Primatech", "Kaiba", "Ajax", "Atlas",
    "Pinnacle", "Summit", "Harbor", "Cedar", "Granite", "Riverbend",
)  # fmt: skip
COMPANY_SUFFIXES = ("Inc", "LLC", "Co", "Group", "Labs", "Partners", "Holdings", "Systems", "Studio")
INDUSTRIES = (
    "COMPUTER_SOFTWARE", "FINANCIAL_SERVICES", "RETAIL", "HOSPITAL_HEALTH_CARE", "REAL_ESTATE",
    "CONSTRUCTION", "LOGISTICS_AND_SUPPLY_CHAIN", "FOOD_BEVERAGES", "MARKETING_AND_ADVERTISING",
    "ACCOUNTING", "INSURANCE", "EDUCATION_MANAGEMENT",
)  # fmt: skip
CITIES = (
    ("San Francisco", "CA", "94107", "415"),
    ("New York", "NY", "10013", "212"),
    ("Austin", "TX", "78701", "512"),
    ("Boston", "MA", "02110", "617"),
    ("Chicago", "IL", "60606", "312"),
    ("Los Angeles", "CA", "90012", "213"),
    ("Seattle", "WA", "98104", "206"),
    ("Denver", "CO", "80202", "303"),
    ("Des Moines", "IA", "50309", "515"),
    ("Atlanta", "GA", "30303", "404"),
    ("Miami", "FL", "33130", "305"),
    ("Portland", "OR", "97204", "503"),
    ("Minneapolis", "MN", "55401", "612"),
    ("Phoenix", "AZ", "85004", "602"),
    ("Nashville", "TN", "37203", "615"),
)
STREETS = (
    "Main St", "Market St", "Oak Ave", "Pine St", "Maple Ave", "Cedar Rd", "Elm St", "Lake Dr",
    "Hill Rd", "Park Ave", "2nd St", "Broadway", "Mission St", "Grand Ave", "Walnut St",
)  # fmt: skip
BANKS = (
    "JPMORGAN CHASE BANK", "WELLS FARGO BANK", "BANK OF AMERICA", "U.S. BANK", "CAPITAL ONE",
    "PNC BANK", "TRUIST BANK", "CITIBANK", "FIRST INTERSTATE BANK", "SANDBOX TEST BANK",
)  # fmt: skip
TRANSFER_NOTES = (
    "Monthly subscription",
    "Invoice payment",
    "Payout",
    "Refund",
    "Marketplace settlement",
    "Deposit",
    "Rent",
    "Service fee",
)
TICKET_SUBJECTS = (
    ("Cannot link bank account", "Customer says the bank login screen keeps timing out."),
    ("Where is my payout?", "Payout not visible in the bank account yet."),
    ("Update company address", "Customer moved offices and wants invoices updated."),
    ("Verification documents", "Customer asks which documents are accepted for verification."),
    ("Duplicate charge?", "Customer sees two pending debits with the same amount."),
    ("Change account owner", "The account admin left the company."),
    ("Checkout page error", "Customer reports an error on the payment step of checkout."),
)


class _Ids:
    """Deterministic ids: UUIDs from the seeded generator, numeric HubSpot ids from counters."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.contact = 1000
        self.company = 9_800_000_000
        self.deal = 15_200_000_000
        self.ticket = 3_100_000_000

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def next_contact(self) -> str:
        self.contact += self.rng.randint(1, 60)
        return str(self.contact)

    def next_company(self) -> str:
        self.company += self.rng.randint(1, 900)
        return str(self.company)

    def next_deal(self) -> str:
        self.deal += self.rng.randint(1, 900)
        return str(self.deal)

    def next_ticket(self) -> str:
        self.ticket += self.rng.randint(1, 900)
        return str(self.ticket)


def phone_forms(e164: str) -> tuple[str, str]:
    """(E.164, national display form) of a phone number."""
    parsed = phonenumbers.parse(e164)
    return (
        phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
        phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL),
    )


def _fingerprint(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def _slug(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


@dataclass
class _Spec:
    """What to generate for one customer; the headline customers spell theirs out."""

    first: str
    last: str
    email: str
    phone: str
    company: str | None
    in_hubspot: bool = True
    in_dwolla: bool = True
    dwolla_type: str = "personal"
    dwolla_status: str = "verified"
    dwolla_email: str | None = None
    dwolla_first: str | None = None
    dwolla_last: str | None = None
    dwolla_id_on_contact: bool = True
    dwolla_id_on_company: bool = False
    lifecycle: str = "customer"
    owner: Owner | None = None
    fixed_dwolla_id: str | None = None
    fixed_contact_id: str | None = None
    transfers: list[tuple[int, str, str, str | None, str]] | None = (
        None  # days ago, amount, status, code, dir
    )
    banks: list[tuple[str, bool]] | None = None  # (bank name, removed)
    city: tuple[str, str, str, str] | None = None
    ticket: tuple[str, str, str, str] | None = None  # subject, content, stage, priority


@dataclass
class _CompanySpec:
    name: str
    domain: str
    city: tuple[str, str, str, str]
    people: list[_Spec]
    fixed_id: str | None = None


def _headline() -> list[_CompanySpec | _Spec]:
    sf = CITIES[0]
    ny = CITIES[1]
    austin = CITIES[2]
    boston = CITIES[3]
    chicago = CITIES[4]
    la = CITIES[5]
    jane = _Spec(
        "Jane", "Doe", "jane@acme.io", "+14155550101", "Acme Inc",
        fixed_dwolla_id="5b29279d-6359-4c87-a318-e09095532733", fixed_contact_id="101",
        owner=OWNERS[0], city=sf,
        transfers=[
            (2, "225.00", "failed", "R01", "debit"),
            (9, "225.00", "processed", None, "debit"),
            (33, "225.00", "processed", None, "debit"),
            (47, "80.50", "processed", None, "credit"),
            (63, "225.00", "processed", None, "debit"),
        ],
        banks=[("JPMORGAN CHASE BANK", False)],
        ticket=("Payment failed: insufficient funds",
                "ACH debit of $225.00 returned R01. Customer asks to retry.",
                "1", "HIGH"),
    )  # fmt: skip
    john = _Spec(
        "John", "Smith", "john.smith@acme.io", "+14155550102", "Acme Inc",
        dwolla_type="business", fixed_dwolla_id="0d5b4e3a-2c1f-4a8e-9b7d-6e5f4a3b2c11",
        fixed_contact_id="151",
        dwolla_id_on_company=True, owner=OWNERS[0], city=sf,
        transfers=[
            (1, "1250.00", "pending", None, "debit"),
            (15, "1250.00", "processed", None, "debit"),
            (45, "1250.00", "processed", None, "debit"),
            (75, "1250.00", "processed", None, "debit"),
        ],
        banks=[("WELLS FARGO BANK", False), ("WELLS FARGO BANK", True)],
    )  # fmt: skip
    maria = _Spec(
        "Maria", "Garcia", "maria@globex.com", "+12125550147", "Globex Corporation",
        dwolla_email="maria.garcia@globex.com", fixed_dwolla_id="7f3c2a1b-9e8d-4c7b-a6f5-e4d3c2b1a021",
        fixed_contact_id="201", owner=OWNERS[1], city=ny,
        transfers=[(5, "540.00", "processed", None, "debit"), (35, "540.00", "processed", None, "debit")],
    )  # fmt: skip
    robert = _Spec(
        "Robert", "Chen", "robert@initech.com", "+15125550133", "Initech",
        dwolla_first="Bob", fixed_dwolla_id="3e9a8b7c-6d5e-4f1a-8b2c-1d0e9f8a7b31", fixed_contact_id="251",
        owner=OWNERS[2], city=austin,
        transfers=[
            (4, "310.00", "processed", None, "debit"),
            (12, "310.00", "failed", "R03", "debit"),
            (40, "99.00", "cancelled", None, "debit"),
        ],
        banks=[("BANK OF AMERICA", False), ("CAPITAL ONE", True)],
    )  # fmt: skip
    priya = _Spec(
        "Priya", "Patel", "priya@umbrella.health", "+16175550188", "Umbrella Health",
        dwolla_status="suspended", dwolla_id_on_contact=False,
        fixed_dwolla_id="9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c41", fixed_contact_id="301",
        owner=OWNERS[3], city=boston,
        transfers=[(20, "75.00", "failed", "R10", "debit"), (50, "75.00", "processed", None, "debit")],
        ticket=("Account suspended", "Customer cannot send payments since the account was suspended.", "3",
                "URGENT"),
    )  # fmt: skip
    sophia = _Spec(
        "Sophia", "Lee", "sophia@umbrella.health", "+16175550190", "Umbrella Health",
        dwolla_status="deactivated", fixed_dwolla_id="4b3c2d1e-0f9a-4b8c-8d7e-6f5a4b3c2d51",
        fixed_contact_id="351", owner=OWNERS[3], city=boston, lifecycle="other",
        transfers=[(80, "42.00", "processed", None, "credit")],
    )  # fmt: skip
    olivia = _Spec(
        "Olivia", "Brown", "olivia@hooli.dev", "+16505550110", "Hooli", in_dwolla=False,
        fixed_contact_id="401", lifecycle="lead", owner=OWNERS[4], city=CITIES[0],
    )  # fmt: skip
    lucas = _Spec(
        "Lucas", "Martin", "lucas@piedpiper.io", "+16505550175", None, in_hubspot=False,
        dwolla_type="unverified", dwolla_status="unverified",
        fixed_dwolla_id="6c5d4e3f-2a1b-4c9d-8e7f-0a9b8c7d6e61", city=CITIES[0],
        transfers=[(3, "19.99", "pending", None, "debit")], banks=[("SANDBOX TEST BANK", False)],
    )  # fmt: skip
    emma = _Spec(
        "Emma", "Wilson", "emma@starkindustries.co", "+12135550164", "Stark Industries",
        dwolla_status="document", fixed_dwolla_id="8e7f6a5b-4c3d-4e2f-9a1b-0c9d8e7f6a71",
        fixed_contact_id="451", owner=OWNERS[5], city=la, lifecycle="opportunity", transfers=[],
        ticket=("Verification documents", "Customer asks which ID documents are accepted.", "2", "MEDIUM"),
    )  # fmt: skip
    noah = _Spec(
        "Noah", "Johnson", "noah@wayneenterprises.co", "+13125550129", "Wayne Enterprises",
        dwolla_status="retry", fixed_dwolla_id="1f0e9d8c-7b6a-4f5e-8d4c-3b2a1f0e9d81",
        fixed_contact_id="501", owner=OWNERS[1], city=chicago,
        transfers=[(25, "600.00", "failed", "R02", "credit"), (60, "600.00", "processed", None, "credit")],
        banks=[("PNC BANK", True), ("TRUIST BANK", False)],
    )  # fmt: skip
    return [
        _CompanySpec("Acme Inc", "acme.io", sf, [jane, john], fixed_id="9700000101"),
        _CompanySpec("Globex Corporation", "globex.com", ny, [maria], fixed_id="9700000102"),
        _CompanySpec("Initech", "initech.com", austin, [robert], fixed_id="9700000103"),
        _CompanySpec("Umbrella Health", "umbrella.health", boston, [priya, sophia], fixed_id="9700000104"),
        _CompanySpec("Hooli", "hooli.dev", CITIES[0], [olivia], fixed_id="9700000105"),
        lucas,
        _CompanySpec("Stark Industries", "starkindustries.co", la, [emma], fixed_id="9700000106"),
        _CompanySpec("Wayne Enterprises", "wayneenterprises.co", chicago, [noah], fixed_id="9700000107"),
    ]


HEADLINE_EMAILS = (
    "jane@acme.io",
    "john.smith@acme.io",
    "maria@globex.com",
    "robert@initech.com",
    "priya@umbrella.health",
    "olivia@hooli.dev",
    "lucas@piedpiper.io",
    "emma@starkindustries.co",
    "noah@wayneenterprises.co",
    "sophia@umbrella.health",
)


class _Builder:
    def __init__(self, seed: int, now: datetime) -> None:
        self.rng = random.Random(seed)
        self.ids = _Ids(random.Random(seed * 7919 + 1))
        self.now = now
        self.customers: list[Customer] = []
        self.companies: list[Company] = []
        self.deals: dict[str, Deal] = {}
        self.tickets: dict[str, Ticket] = {}
        self.used_emails: set[str] = set()
        self.used_phones: set[str] = {
            "+14155550101", "+14155550102", "+12125550147", "+15125550133", "+16175550188",
            "+16505550110", "+16505550175", "+12135550164", "+13125550129", "+16175550190",
        }  # fmt: skip
        self.used_company_names: set[str] = set()

    # -- helpers
    def ago(self, days: float, jitter_hours: bool = True) -> datetime:
        extra = timedelta(minutes=self.rng.randint(0, 600)) if jitter_hours else timedelta()
        return (self.now - timedelta(days=days) - extra).replace(microsecond=self.rng.randint(0, 999) * 1000)

    def phone(self, area: str) -> str:
        while True:
            number = f"+1{area}5550{self.rng.randint(100, 199)}"
            if number not in self.used_phones:
                self.used_phones.add(number)
                return number

    def address(self, city: tuple[str, str, str, str]) -> tuple[str, str, str, str]:
        street = f"{self.rng.randint(10, 9899)} {self.rng.choice(STREETS)}"
        return street, city[0], city[1], city[2]

    # -- companies and people
    def add_company(self, spec: _CompanySpec) -> None:
        created = self.ago(self.rng.randint(120, 900))
        self.used_company_names.add(spec.name)
        company = Company(
            hubspot_id=spec.fixed_id or self.ids.next_company(),
            name=spec.name,
            domain=spec.domain,
            phone=self.phone(spec.city[3]),
            industry=self.rng.choice(INDUSTRIES),
            city=spec.city[0],
            state=spec.city[1],
            owner_id=(spec.people[0].owner or self.rng.choice(OWNERS)).id,
            created=created,
            updated=self.ago(self.rng.randint(0, 30)),
        )
        self.companies.append(company)
        members = [self.add_person(p, company) for p in spec.people]
        primary = next((m for m in members if m.in_hubspot), None)
        for person, member in zip(spec.people, members, strict=True):
            if person.dwolla_id_on_company and member.dwolla_id:
                company.dwolla_id = member.dwolla_id
        if primary is not None:
            company.lifecycle_stage = primary.lifecycle_stage or "customer"
            company.onboarding_step = primary.onboarding_step or "signup"
            company.onboarding_status = primary.onboarding_status or "not_started"
        self.add_deals(company, members, at_least=1 if spec.fixed_id else 0)

    def add_person(self, spec: _Spec, company: Company | None) -> Customer:
        rng = self.rng
        city = spec.city or rng.choice(CITIES)
        address1, city_name, state, postal = self.address(city)
        e164, display = phone_forms(spec.phone)
        created = self.ago(rng.randint(30, 700))
        dwolla_id = (spec.fixed_dwolla_id or self.ids.uuid()) if spec.in_dwolla else None
        contact_id = (spec.fixed_contact_id or self.ids.next_contact()) if spec.in_hubspot else None
        owner = spec.owner or rng.choice(OWNERS)
        self.used_emails.add(spec.email.lower())
        customer = Customer(
            email=spec.email,
            first_name=spec.first,
            last_name=spec.last,
            phone=e164,
            phone_display=display,
            company=company.name if company else spec.company,
            created=created,
            hubspot_contact_id=contact_id,
            hubspot_company_id=company.hubspot_id if company and spec.in_hubspot else None,
            lifecycle_stage=spec.lifecycle if spec.in_hubspot else None,
            owner=owner if spec.in_hubspot else None,
            hubspot_dwolla_id=dwolla_id if spec.in_hubspot and spec.dwolla_id_on_contact else None,
            onboarding_step=None,
            onboarding_status=None,
            dwolla_id=dwolla_id,
            dwolla_type=spec.dwolla_type if spec.in_dwolla else None,
            dwolla_status=spec.dwolla_status if spec.in_dwolla else None,
            dwolla_email=(spec.dwolla_email or spec.email) if spec.in_dwolla else None,
            dwolla_first_name=(spec.dwolla_first or spec.first) if spec.in_dwolla else None,
            dwolla_last_name=(spec.dwolla_last or spec.last) if spec.in_dwolla else None,
            dwolla_business_name=(company.name if company else spec.company)
            if spec.in_dwolla and spec.dwolla_type == "business"
            else None,
            dwolla_business_type=rng.choice(("llc", "corporation"))
            if spec.dwolla_type == "business"
            else None,
            address1=address1,
            city=city_name,
            state=state,
            postal_code=postal,
        )
        if not spec.in_hubspot:
            customer.inconsistencies.append("dwolla_only")
        if not spec.in_dwolla:
            customer.inconsistencies.append("hubspot_only")
        if spec.in_hubspot and spec.in_dwolla:
            if customer.dwolla_email and customer.dwolla_email.lower() != customer.email.lower():
                customer.inconsistencies.append("email_differs")
            if (customer.dwolla_first_name, customer.dwolla_last_name) != (spec.first, spec.last):
                customer.inconsistencies.append("name_differs")
            if customer.hubspot_dwolla_id is None and not spec.dwolla_id_on_company:
                customer.inconsistencies.append("missing_dwolla_id")
        if spec.in_dwolla:
            self.add_money(customer, spec)
        self.set_onboarding(customer)
        if company is not None and contact_id:
            company.contact_ids.append(contact_id)
        if spec.ticket and contact_id:
            self.add_ticket(customer, company, *spec.ticket)
        self.customers.append(customer)
        return customer

    def set_onboarding(self, c: Customer) -> None:
        if not c.in_hubspot:
            return
        status = c.dwolla_status
        if status is None:
            c.onboarding_step, c.onboarding_status = "signup", "in_progress"
        elif status in ("retry", "document", "kba"):
            c.onboarding_step, c.onboarding_status = "identity_verification", "blocked"
        elif status == "suspended":
            c.onboarding_step, c.onboarding_status = "identity_verification", "blocked"
        elif status == "deactivated":
            c.onboarding_step, c.onboarding_status = "live", "complete"
        elif status == "unverified":
            active = [fs for fs in c.funding_sources if fs.type == "bank" and not fs.removed]
            c.onboarding_step = "first_transfer" if active else "bank_linking"
            c.onboarding_status = "in_progress"
        elif any(t.status == "processed" for t in c.transfers):
            c.onboarding_step, c.onboarding_status = "live", "complete"
        elif c.funding_sources:
            c.onboarding_step, c.onboarding_status = "first_transfer", "in_progress"
        else:
            c.onboarding_step, c.onboarding_status = "bank_linking", "in_progress"

    def add_money(self, c: Customer, spec: _Spec) -> None:
        rng = self.rng
        assert c.dwolla_id is not None
        verified = c.dwolla_status == "verified"
        banks = spec.banks
        if banks is None:
            count = rng.choices((0, 1, 2), weights=(1, 6, 2))[0]
            banks = [(rng.choice(BANKS), count == 2 and i == 0 and rng.random() < 0.6) for i in range(count)]
        for bank_name, removed in banks:
            fs_id = self.ids.uuid()
            kind = rng.choice(("checking", "checking", "savings"))
            c.funding_sources.append(
                FundingSource(
                    id=fs_id,
                    customer_dwolla_id=c.dwolla_id,
                    name=f"{bank_name.title().split()[0]} {kind.title()} {rng.randint(1000, 9999)}",
                    type="bank",
                    status="verified" if verified or rng.random() < 0.5 else "unverified",
                    created=c.created + timedelta(days=rng.randint(0, 20), minutes=rng.randint(0, 900)),
                    removed=removed,
                    bank_account_type=kind,
                    bank_name=bank_name,
                    fingerprint=_fingerprint(fs_id),
                )
            )
        if verified or (c.dwolla_type in ("personal", "business") and c.dwolla_status != "unverified"):
            c.funding_sources.append(
                FundingSource(
                    id=self.ids.uuid(),
                    customer_dwolla_id=c.dwolla_id,
                    name="Balance",
                    type="balance",
                    status="verified",
                    created=c.created,
                    channels=(),
                    balance=Decimal(rng.randint(0, 500_000)) / 100 if verified else Decimal("0.00"),
                )
            )
        banks_fs = [fs for fs in c.funding_sources if fs.type == "bank"]
        if not banks_fs:
            return
        plan = spec.transfers
        if plan is None:
            plan = []
            for _ in range(rng.choices((0, 1, 2, 4, 6, 9), weights=(2, 2, 3, 3, 2, 1))[0]):
                days = rng.randint(0, 89)
                if days <= 3:
                    status = rng.choice(("pending", "pending", "processed"))
                else:
                    status = rng.choices(("processed", "failed", "cancelled"), weights=(85, 10, 5))[0]
                code = rng.choice(tuple(ACH_RETURNS)) if status == "failed" else None
                base_amount = rng.choice((19.99, 49, 75, 120, 225, 310.5, 499, 1250, 2400))
                amount = f"{base_amount * rng.choice((1, 1, 2)):.2f}"
                plan.append((days, amount, status, code, rng.choice(("debit", "debit", "credit"))))
        active = [fs for fs in banks_fs if not fs.removed] or banks_fs
        removed_fs = [fs for fs in banks_fs if fs.removed]
        for days, amount, status, code, direction in plan:
            fs = removed_fs[0] if status == "failed" and removed_fs else rng.choice(active)
            c.transfers.append(
                Transfer(
                    id=self.ids.uuid(),
                    customer_dwolla_id=c.dwolla_id,
                    direction=direction,
                    status=status,
                    amount=Decimal(amount),
                    created=self.ago(days),
                    customer_funding_source_id=fs.id,
                    correlation_id=f"CID-{self.ids.uuid()}",
                    clearing=rng.choice(("standard", "standard", "next-available")),
                    note=rng.choice(TRANSFER_NOTES),
                    failure_code=code,
                )
            )
        c.transfers.sort(key=lambda t: t.created, reverse=True)

    def add_deals(self, company: Company, members: list[Customer], at_least: int = 0) -> None:
        rng = self.rng
        contacts = [m for m in members if m.hubspot_contact_id]
        if not contacts:
            return
        for n in range(max(at_least, rng.choices((0, 1, 2, 3), weights=(3, 4, 2, 1))[0])):
            stage = rng.choice(DEAL_STAGES)
            created = self.ago(rng.randint(10, 300))
            related = (
                [contacts[0]]
                if n == 0 and at_least
                else rng.sample(contacts, k=min(len(contacts), rng.randint(1, 2)))
            )
            deal = Deal(
                id=self.ids.next_deal(),
                name=f"{company.name} - {rng.choice(DEAL_KINDS)}",
                amount=Decimal(rng.choice((1200, 4800, 9600, 15000, 24000, 60000))),
                stage=stage,
                close_date=(self.now + timedelta(days=rng.randint(-120, 120))).date(),
                created=created,
                updated=self.ago(rng.randint(0, 9)),
                owner_id=company.owner_id,
                company_id=company.hubspot_id,
                contact_ids=[m.hubspot_contact_id for m in related if m.hubspot_contact_id],
            )
            self.deals[deal.id] = deal
            company.deal_ids.append(deal.id)
            for m in related:
                m.deal_ids.append(deal.id)

    def add_ticket(self, c: Customer, company: Company | None, subject: str, content: str, stage: str,
                   priority: str) -> None:  # fmt: skip
        assert c.hubspot_contact_id is not None
        created = self.ago(self.rng.randint(0, 60))
        ticket = Ticket(
            id=self.ids.next_ticket(),
            subject=subject,
            content=content,
            stage=stage,
            priority=priority,
            created=created,
            updated=min(self.now, created + timedelta(hours=self.rng.randint(1, 72))),
            owner_id=(c.owner or OWNERS[0]).id,
            company_id=company.hubspot_id if company else None,
            contact_ids=[c.hubspot_contact_id],
        )
        self.tickets[ticket.id] = ticket
        c.ticket_ids.append(ticket.id)
        if company is not None:
            company.ticket_ids.append(ticket.id)

    # -- generated population
    def unique_email(self, local: str, domain: str) -> str:
        email = f"{local}@{domain}"
        n = 2
        while email.lower() in self.used_emails:
            email = f"{local}{n}@{domain}"
            n += 1
        return email

    def random_person(self, company_name: str | None, domain: str, city: tuple[str, str, str, str],
                      business: bool) -> _Spec:  # fmt: skip
        rng = self.rng
        first = rng.choice(FIRST_NAMES)
        last = rng.choice(LAST_NAMES)
        style = rng.randint(0, 2)
        local = (
            f"{_slug(first)}.{_slug(last)}"
            if style == 0
            else _slug(first)
            if style == 1
            else f"{_slug(first)[0]}{_slug(last)}"
        )
        email = self.unique_email(local, domain)
        spec = _Spec(first, last, email, self.phone(city[3]), company_name, city=city)
        roll = rng.random()
        if business:
            spec.dwolla_type = "business"
            spec.dwolla_status = rng.choices(
                ("verified", "document", "retry", "suspended", "deactivated"), weights=(80, 6, 5, 5, 4)
            )[0]
            spec.dwolla_id_on_company = rng.random() < 0.85
            spec.dwolla_id_on_contact = rng.random() < 0.6
        elif roll < 0.12:
            spec.dwolla_type, spec.dwolla_status = "unverified", "unverified"
        elif roll < 0.16:
            spec.dwolla_type = "receive-only"
            spec.dwolla_status = rng.choice(("unverified", "unverified", "suspended"))
        else:
            spec.dwolla_type = "personal"
            spec.dwolla_status = rng.choices(
                ("verified", "retry", "document", "kba", "suspended", "deactivated"),
                weights=(72, 6, 6, 2, 7, 7),
            )[0]
        if spec.dwolla_type in ("unverified", "receive-only") and rng.random() < 0.1:
            spec.dwolla_status = "deactivated"
        spec.lifecycle = rng.choices(LIFECYCLE_STAGES, weights=(1, 2, 1, 1, 2, 8, 1))[0]
        # Deliberate inconsistencies.
        mix = rng.random()
        if mix < 0.05:
            spec.in_dwolla = False
            spec.lifecycle = rng.choice(("lead", "subscriber", "marketingqualifiedlead"))
        elif mix < 0.10:
            alt = rng.choice(
                (
                    f"{_slug(first)}.{_slug(last)}.billing@{domain}",
                    f"{_slug(first)}{rng.randint(1, 99)}@mailbox.example",
                    f"{_slug(first)}_{_slug(last)}@{domain}",
                )
            )
            spec.dwolla_email = alt if alt.lower() != email.lower() else f"pay.{alt}"
        elif mix < 0.15:
            if first in NAME_VARIANTS or last in NAME_VARIANTS:
                spec.dwolla_first = NAME_VARIANTS.get(first, first)
                spec.dwolla_last = NAME_VARIANTS.get(last, last)
            else:
                spec.dwolla_last = last.upper() if rng.random() < 0.5 else last[:-1]
        elif mix < 0.25 and not business:
            spec.dwolla_id_on_contact = False
        if (
            business
            and not spec.dwolla_id_on_company
            and not spec.dwolla_id_on_contact
            and rng.random() < 0.5
        ):
            spec.dwolla_id_on_contact = True
        return spec

    def company_name(self) -> tuple[str, str]:
        while True:
            word = self.rng.choice(COMPANY_WORDS)
            suffix = self.rng.choice(COMPANY_SUFFIXES)
            name = f"{word} {suffix}"
            if name not in self.used_company_names:
                tld = self.rng.choice(("com", "io", "co", "net", "dev"))
                return name, f"{_slug(word)}.{tld}"

    def generate(self, target: int) -> None:
        for item in _headline():
            if isinstance(item, _CompanySpec):
                self.add_company(item)
            else:
                self.add_person(item, None)
        # Keep the headline order documented above (Sophia last of the headline).
        order = {email: i for i, email in enumerate(HEADLINE_EMAILS)}
        self.customers.sort(key=lambda c: order[c.email])
        rng = self.rng
        while len(self.customers) < target:
            if rng.random() < 0.06:
                # A Dwolla-only person with a personal address.
                city = rng.choice(CITIES)
                spec = self.random_person(None, "mailbox.example", city, business=False)
                spec.company, spec.in_hubspot, spec.in_dwolla = None, False, True
                spec.dwolla_email = None
                spec.dwolla_first = spec.dwolla_last = None
                self.add_person(spec, None)
                continue
            name, domain = self.company_name()
            city = rng.choice(CITIES)
            size = rng.choices((1, 2, 3, 4, 5, 6), weights=(2, 4, 4, 3, 2, 1))[0]
            people = [self.random_person(name, domain, city, business=(i == 0)) for i in range(size)]
            self.add_company(_CompanySpec(name, domain, city, people))
        for company in self.companies:
            for contact_id in company.contact_ids:
                cust = next(c for c in self.customers if c.hubspot_contact_id == contact_id)
                if cust.failed_transfers and not cust.ticket_ids and rng.random() < 0.5:
                    t = cust.failed_transfers[0]
                    self.add_ticket(
                        cust, company, f"Transfer returned {t.failure_code}",
                        f"ACH return {t.failure_code} ({t.failure_description}) on ${t.amount_value}.",
                        rng.choice(TICKET_STAGES), rng.choice(("MEDIUM", "HIGH")),
                    )  # fmt: skip
                elif not cust.ticket_ids and rng.random() < 0.12:
                    subject, content = rng.choice(TICKET_SUBJECTS)
                    self.add_ticket(
                        cust, company, subject, content, rng.choice(TICKET_STAGES),
                        rng.choice(("LOW", "MEDIUM", "HIGH")),
                    )  # fmt: skip


def demo_world(seed: int = 7, now: datetime | None = None, size: int = 240) -> World:
    """The demo world for `seed`: at least `size` customers, headline customers first."""
    anchor = now or ANCHOR
    if anchor.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return _cached_world(seed, anchor.astimezone(UTC).replace(microsecond=0), size)


@lru_cache(maxsize=8)
def _cached_world(seed: int, now: datetime, size: int) -> World:
    builder = _Builder(seed, now)
    builder.generate(size)
    return World(
        now=now,
        seed=seed,
        customers=builder.customers,
        companies=builder.companies,
        owners=list(OWNERS),
        deals=builder.deals,
        tickets=builder.tickets,
    )
