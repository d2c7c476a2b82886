"""HubSpot <-> Dwolla correlation: Dwolla id, then e-mail, then name; confidence and inconsistencies."""

from __future__ import annotations

from supportlens.customers.correlation import correlate, name_similarity, normalize_name
from supportlens.integrations.dwolla.models import DwollaCustomer
from supportlens.integrations.hubspot.models import HubSpotCompany, HubSpotContact, HubSpotContactBundle


def contact(
    cid: str, first: str, last: str, email: str | None, dwolla_id: str | None = None, **kw
) -> HubSpotContactBundle:
    companies = kw.pop("companies", [])
    return HubSpotContactBundle(
        contact=HubSpotContact(
            id=cid, first_name=first, last_name=last, email=email, dwolla_id=dwolla_id, **kw
        ),
        companies=companies,
    )


def customer(did: str, first: str, last: str, email: str, status: str = "verified", **kw) -> DwollaCustomer:
    return DwollaCustomer(id=did, first_name=first, last_name=last, email=email, status=status, **kw)


def test_dwolla_id_is_the_strongest_link_and_differences_are_listed() -> None:
    result = correlate(
        [contact("1", "Maria", "Garcia", "maria@globex.com", "d-1")],
        [customer("d-1", "Maria", "Garcia", "maria.garcia@globex.com")],
    )
    assert result.status == "matched"
    [m] = result.matches
    assert (m.hubspot_contact_id, m.dwolla_customer_id, m.method) == ("1", "d-1", "dwolla_id")
    assert m.confidence >= 0.9
    [issue] = m.inconsistencies
    assert (
        issue.field == "email"
        and issue.hubspot == "maria@globex.com"
        and issue.dwolla == "maria.garcia@globex.com"
    )


def test_name_differs_under_the_same_dwolla_id() -> None:
    [m] = correlate(
        [contact("4", "Robert", "Chen", "robert@initech.com", "d-4")],
        [customer("d-4", "Bob", "Chen", "robert@initech.com")],
    ).matches
    assert m.method == "dwolla_id"
    assert [i.field for i in m.inconsistencies] == ["name"]
    assert m.inconsistencies[0].message == "Name differs"


def test_email_link_when_hubspot_lacks_the_dwolla_id_and_status_mismatch() -> None:
    [m] = correlate(
        [contact("5", "Priya", "Patel", "PRIYA@umbrella.health", None, lifecycle_stage="customer")],
        [customer("d-5", "Priya", "Patel", "priya@umbrella.health", status="suspended")],
    ).matches
    assert m.method == "email"
    fields = {i.field for i in m.inconsistencies}
    assert fields == {"dwolla_id", "status"}
    assert 0.7 <= m.confidence < 0.92


def test_dwolla_id_on_the_company_counts() -> None:
    company = HubSpotCompany(id="c1", name="Acme Inc", dwolla_id="d-2")
    [m] = correlate(
        [contact("2", "John", "Smith", "john@acme.io", None, companies=[company])],
        [customer("d-2", "John", "Smith", "john@acme.io", business_name="Acme Inc", type="business")],
    ).matches
    assert m.method == "dwolla_id" and m.inconsistencies == []
    assert m.confidence == 0.99


def test_name_only_link_is_weak_and_says_so() -> None:
    [m] = correlate(
        [contact("9", "Zoë", "Müller", "zoe@old-domain.de", None)],
        [customer("d-9", "Zoe", "Muller", "zoe@new-domain.de")],
    ).matches
    assert m.method == "name"
    assert 0.4 <= m.confidence <= 0.75
    assert {"email", "name", "dwolla_id"} == {i.field for i in m.inconsistencies}
    assert next(i for i in m.inconsistencies if i.field == "name").message == "Name spelled differently"


def test_stronger_links_win_and_each_record_is_used_once() -> None:
    result = correlate(
        [
            contact("a", "Jane", "Doe", "jane@acme.io", "d-jane"),
            contact("b", "Jane", "Doe", "jane.doe@other.io", None),
            contact("c", "Olivia", "Brown", "olivia@hooli.dev", None),
        ],
        [
            customer("d-jane", "Jane", "Doe", "jane@acme.io"),
            customer("d-other", "Jane", "Doe", "jane.doe@other.io"),
            customer("d-lucas", "Lucas", "Martin", "lucas@piedpiper.io", status="unverified"),
        ],
    )
    pairs = {(m.hubspot_contact_id, m.dwolla_customer_id, m.method) for m in result.matches}
    assert pairs == {("a", "d-jane", "dwolla_id"), ("b", "d-other", "email")}
    assert result.unmatched_hubspot == ["c"] and result.unmatched_dwolla == ["d-lucas"]
    assert result.matches[0].confidence >= result.matches[1].confidence


def test_unavailable_and_empty() -> None:
    assert correlate(None, [], query_email="x@y.io").status == "unavailable"
    assert correlate([], None).note == "Dwolla did not answer"
    assert correlate([], []).status == "empty"
    assert correlate([contact("c", "A", "B", "a@b.io")], []).status == "unmatched"
    assert correlate([contact("c", "A", "B", "a@b.io")], []).best_email == "a@b.io"


def test_name_normalisation() -> None:
    assert normalize_name("Doe, Jané") == normalize_name("jane DOE")
    assert name_similarity("Jon Smith", "John Smith") > 0.85
    assert name_similarity("Robert Chen", "Bob Chen") < 0.85
    assert name_similarity(None, "x") == 0.0
