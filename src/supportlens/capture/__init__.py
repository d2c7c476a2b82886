"""The public side: sites send sessions here (ingest v1, supportlens.js, site keys, limits, consent)."""
