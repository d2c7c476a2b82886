"""Session notes written to HubSpot: a session's story on the contact's (and a ticket's) timeline."""
