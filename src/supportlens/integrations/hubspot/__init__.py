"""HubSpot CRM: contacts search, and each contact's companies, deals and tickets."""
