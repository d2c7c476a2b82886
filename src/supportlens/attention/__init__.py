"""Dwolla webhooks in, and the "Needs attention" queue of failed transfers they raise."""
