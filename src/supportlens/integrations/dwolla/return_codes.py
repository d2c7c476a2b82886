"""ACH return codes in plain words, for the agents' screens.

A failed Dwolla transfer's `failure` resource gives the NACHA return code and its formal title
("R01", "Insufficient Funds"). Agents need what it means for the customer and what to do next. The
codes are NACHA's; the titles follow Dwolla's transfer-failure descriptions. Dwolla removes or
unverifies the bank account on most returns (not on R01), and deactivates the customer on an R10
("Customer Advises Not Authorized").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReturnCode:
    code: str
    title: str  # the formal description, as Dwolla's failure resource gives it
    plain: str  # what happened, in words a customer would use
    next_step: str  # what support can do about it


def _table(*rows: tuple[str, str, str, str]) -> dict[str, ReturnCode]:
    return {code: ReturnCode(code, title, plain, step) for code, title, plain, step in rows}


RETRY_LATER = "Ask the customer to make sure the money is there, then retry the payment."
NEW_BANK = "Ask the customer to link a bank account again (check the account and routing numbers)."
CUSTOMER_DISPUTE = (
    "The customer told their bank they did not allow this payment: talk to them before any retry."
)
ESCALATE = "Escalate to the payments team; do not retry."

ACH_RETURN_CODES: dict[str, ReturnCode] = _table(
    ("R01", "Insufficient Funds", "insufficient funds: there was not enough money in the account",
     RETRY_LATER),
    ("R02", "Account Closed", "the bank account has been closed", NEW_BANK),
    ("R03", "No Account/Unable to Locate Account", "the bank could not find this account", NEW_BANK),
    ("R04", "Invalid Account Number", "the account number is not valid", NEW_BANK),
    ("R05", "Unauthorized Debit to Consumer Account Using Corporate SEC Code",
     "a personal account was debited as if it were a business account", ESCALATE),
    ("R06", "Returned per ODFI's Request", "the sending bank asked for the payment back", ESCALATE),
    ("R07", "Authorization Revoked by Customer", "the customer withdrew their permission for payments",
     CUSTOMER_DISPUTE),
    ("R08", "Payment Stopped", "the customer asked their bank to stop this payment", CUSTOMER_DISPUTE),
    ("R09", "Uncollected Funds", "the money in the account was not yet available", RETRY_LATER),
    ("R10", "Customer Advises Not Authorized",
     "the account holder told their bank this payment was not authorized", CUSTOMER_DISPUTE),
    ("R11", "Customer Advises Entry Not in Accordance with the Terms of the Authorization",
     "the customer says the payment differs from what they agreed to (amount or date)", CUSTOMER_DISPUTE),
    ("R12", "Branch Sold to Another DFI", "the account moved to another bank", NEW_BANK),
    ("R13", "Invalid ACH Routing Number", "the routing number is not valid", NEW_BANK),
    ("R14", "Representative Payee Deceased or Unable to Continue in That Capacity",
     "the person receiving payments on the holder's behalf has died or can no longer act", ESCALATE),
    ("R15", "Beneficiary or Account Holder Deceased", "the account holder has died", ESCALATE),
    ("R16", "Account Frozen", "the bank has frozen the account", NEW_BANK),
    ("R17", "File Record Edit Criteria", "the bank rejected the payment's details as invalid", ESCALATE),
    ("R18", "Improper Effective Entry Date", "the payment carried a date the bank would not accept",
     ESCALATE),
    ("R19", "Amount Field Error", "the payment amount was invalid", ESCALATE),
    ("R20", "Non-Transaction Account",
     "this kind of account (e.g. some savings accounts) cannot make payments",
     NEW_BANK),
    ("R21", "Invalid Company Identification", "the bank did not recognise the company taking the payment",
     ESCALATE),
    ("R22", "Invalid Individual ID Number", "the bank did not recognise the customer's ID on the payment",
     ESCALATE),
    ("R23", "Credit Entry Refused by Receiver", "the customer refused a payment sent to them",
     CUSTOMER_DISPUTE),
    ("R24", "Duplicate Entry", "the bank thinks this payment was sent twice", ESCALATE),
    ("R26", "Mandatory Field Error", "the payment was missing required information", ESCALATE),
    ("R29", "Corporate Customer Advises Not Authorized",
     "the business account holder told their bank this payment was not authorized", CUSTOMER_DISPUTE),
    ("R31", "Permissible Return Entry", "the business's bank returned the payment with the sender's consent",
     ESCALATE),
    ("R33", "Return of XCK Entry", "a converted check payment was returned", ESCALATE),
    ("R34", "Limited Participation DFI", "the bank does not take part in ACH payments of this kind",
     NEW_BANK),
    ("R51", "Item is Ineligible, Notice Not Provided, Signature Not Genuine, or Item Altered",
     "the customer disputes a check-converted payment", CUSTOMER_DISPUTE),
)  # fmt: skip


def describe(code: str | None, title: str | None = None) -> ReturnCode | None:
    """The entry for a return code; an unknown code still gets Dwolla's own title when there is one."""
    if not code:
        return None
    known = ACH_RETURN_CODES.get(code.strip().upper())
    if known is not None:
        return known
    fallback = title.strip() if title and title.strip() else "unknown return reason"
    return ReturnCode(code.strip().upper()[:8], fallback, fallback.lower(), ESCALATE)
