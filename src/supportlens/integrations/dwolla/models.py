"""Pydantic models of Dwolla's HAL JSON (application/vnd.dwolla.v1.hal+json)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class HalLink(_Wire):
    href: str
    type: str | None = None
    resource_type: str | None = Field(default=None, alias="resource-type")


Links = dict[str, HalLink]


class TokenResponse(_Wire):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 (the OAuth token type, not a secret)
    expires_in: int = 3600


class WireCustomer(_Wire):
    links: Links = Field(default_factory=dict, alias="_links")
    id: str
    first_name: str | None = Field(default=None, alias="firstName")
    last_name: str | None = Field(default=None, alias="lastName")
    email: str | None = None
    type: str | None = None
    status: str | None = None
    created: datetime | None = None
    business_name: str | None = Field(default=None, alias="businessName")
    phone: str | None = None


class CustomersEmbedded(_Wire):
    customers: list[WireCustomer] = Field(default_factory=list)


class CustomersPage(_Wire):
    links: Links = Field(default_factory=dict, alias="_links")
    embedded: CustomersEmbedded = Field(alias="_embedded")
    total: int | None = None


class Amount(_Wire):
    value: str
    currency: str = "USD"


class WireTransfer(_Wire):
    links: Links = Field(default_factory=dict, alias="_links")
    id: str
    status: str
    amount: Amount
    created: datetime | None = None
    clearing: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    correlation_id: str | None = Field(default=None, alias="correlationId")


class TransfersEmbedded(_Wire):
    transfers: list[WireTransfer] = Field(default_factory=list)


class TransfersPage(_Wire):
    links: Links = Field(default_factory=dict, alias="_links")
    embedded: TransfersEmbedded = Field(alias="_embedded")
    total: int | None = None


class TransferFailure(_Wire):
    code: str
    description: str | None = None
    explanation: str | None = None


class WireFundingSource(_Wire):
    links: Links = Field(default_factory=dict, alias="_links")
    id: str
    status: str | None = None
    type: str | None = None
    bank_account_type: str | None = Field(default=None, alias="bankAccountType")
    name: str | None = None
    bank_name: str | None = Field(default=None, alias="bankName")
    created: datetime | None = None
    removed: bool = False


class FundingSourcesEmbedded(_Wire):
    funding_sources: list[WireFundingSource] = Field(default_factory=list, alias="funding-sources")


class FundingSourcesPage(_Wire):
    links: Links = Field(default_factory=dict, alias="_links")
    embedded: FundingSourcesEmbedded = Field(alias="_embedded")


# ----------------------------------------------------------------------------- what the app uses


class _Out(BaseModel):
    """Our own models: camelCase in JSON (`model_dump(by_alias=True)`), snake_case in Python."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class DwollaCustomer(_Out):
    id: str
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    type: str | None = None
    status: str | None = None
    created: datetime | None = None
    business_name: str | None = None

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.first_name, self.last_name) if p)

    @classmethod
    def from_wire(cls, c: WireCustomer) -> DwollaCustomer:
        return cls(
            id=c.id,
            first_name=c.first_name,
            last_name=c.last_name,
            email=c.email.lower() if c.email else None,
            type=c.type,
            status=c.status,
            created=c.created,
            business_name=c.business_name,
        )


class DwollaTransfer(_Out):
    id: str
    status: str
    amount: str  # Dwolla's decimal string, e.g. "225.00"
    currency: str = "USD"
    created: datetime | None = None
    direction: str | None = None  # "in" | "out" from the customer's point of view
    correlation_id: str | None = None
    failure_code: str | None = None  # ACH return code, e.g. R01
    failure_description: str | None = None

    @property
    def amount_decimal(self) -> Decimal | None:
        try:
            return Decimal(self.amount)
        except (InvalidOperation, ValueError):
            return None


class DwollaFundingSource(_Out):
    id: str
    status: str | None = None
    type: str | None = None
    bank_account_type: str | None = None
    name: str | None = None
    bank_name: str | None = None
    created: datetime | None = None
    removed: bool = False

    @classmethod
    def from_wire(cls, f: WireFundingSource) -> DwollaFundingSource:
        return cls(
            id=f.id,
            status=f.status,
            type=f.type,
            bank_account_type=f.bank_account_type,
            name=f.name,
            bank_name=f.bank_name,
            created=f.created,
            removed=f.removed,
        )


class DwollaCustomerDetail(_Out):
    """A customer with what an agent checks first: funding sources and recent transfers."""

    customer: DwollaCustomer
    funding_sources: list[DwollaFundingSource] = Field(default_factory=list)
    transfers: list[DwollaTransfer] = Field(default_factory=list)


# ----------------------------------------------------------------------------- webhooks


class WireWebhookSubscription(_Wire):
    links: Links = Field(default_factory=dict, alias="_links")
    id: str
    url: str
    paused: bool = False
    created: datetime | None = None


class WebhookSubscriptionsEmbedded(_Wire):
    subscriptions: list[WireWebhookSubscription] = Field(default_factory=list, alias="webhook-subscriptions")


class WebhookSubscriptionsPage(_Wire):
    embedded: WebhookSubscriptionsEmbedded = Field(alias="_embedded")
    total: int | None = None


class WebhookSubscription(_Out):
    """Where Dwolla sends our events. The secret is never read back: Dwolla does not return it."""

    id: str
    url: str
    paused: bool = False
    created: datetime | None = None

    @classmethod
    def from_wire(cls, w: WireWebhookSubscription) -> WebhookSubscription:
        return cls(id=w.id, url=w.url, paused=w.paused, created=w.created)


class DwollaTransferDetail(_Out):
    """One transfer read by id (e.g. from a webhook), with the customer it belongs to."""

    transfer: DwollaTransfer
    customer_id: str | None = None
