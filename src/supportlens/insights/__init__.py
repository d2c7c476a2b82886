"""Clarity server-side context: Data Export API insights, recordings enrichment, connection status."""
