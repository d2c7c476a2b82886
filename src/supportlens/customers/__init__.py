"""The customer noun: who a customer is across ingest, mapping, search, the sessions API and erasure."""
