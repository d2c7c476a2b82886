"""Scheduled jobs run inside the app; with several replicas exactly one process runs each due job."""
