"""Dwolla: customers, their funding sources and transfers (with ACH return codes for failures)."""
