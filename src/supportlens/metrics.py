"""Prometheus metrics. With several worker processes, PROMETHEUS_MULTIPROC_DIR aggregates them."""

from __future__ import annotations

import os

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, multiprocess

HTTP_LATENCY = Histogram(
    "supportlens_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
UPSTREAM_CALLS = Counter(
    "supportlens_upstream_calls_total",
    "Calls to HubSpot, Dwolla and Clarity by outcome",
    ["vendor", "outcome"],
)
UPSTREAM_LATENCY = Histogram(
    "supportlens_upstream_call_duration_seconds",
    "Upstream call time",
    ["vendor"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10),
)
INGEST_EVENTS = Counter("supportlens_ingest_events_total", "Ingested events by outcome", ["outcome"])
INGEST_BATCHES = Counter("supportlens_ingest_batches_total", "Ingest batches by HTTP status", ["status"])
JOB_RUNS = Counter("supportlens_job_runs_total", "Background job runs by outcome", ["job", "outcome"])


def registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        reg = CollectorRegistry()
        multiprocess.MultiProcessCollector(reg)
        return reg
    return REGISTRY
