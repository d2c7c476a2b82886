"""Prometheus metrics. With several worker processes, PROMETHEUS_MULTIPROC_DIR aggregates them.

`supportlens serve --workers N` (N > 1) points PROMETHEUS_MULTIPROC_DIR at a fresh directory before
the workers start: each worker writes its samples there and `/metrics`, whichever worker answers it,
adds up all of them. Several hosts are scraped one by one (Prometheus sums them by label).
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess

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
UPSTREAM_LIMIT_WAIT = Histogram(
    "supportlens_upstream_rate_limit_wait_seconds",
    "Time a call waited for room under our own client-side rate limit, by vendor and bucket",
    ["vendor", "bucket"],
    buckets=(0.001, 0.005, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
INGEST_EVENTS = Counter("supportlens_ingest_events_total", "Ingested events by outcome", ["outcome"])
INGEST_BATCHES = Counter("supportlens_ingest_batches_total", "Ingest batches by HTTP status", ["status"])
MAPPING_LAG = Histogram(
    "supportlens_mapping_lag_seconds",
    "From a batch's arrival at ingest to its links being committed by the mapping worker (a job that "
    "maps several batches of a session counts once, from the oldest)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
TASK_RUNS = Counter("supportlens_task_runs_total", "Periodic task runs by outcome", ["task", "outcome"])
HTTP_IN_PROGRESS = Gauge(
    "supportlens_http_requests_in_progress",
    "Requests being served now (summed over live worker processes)",
    multiprocess_mode="livesum",
)


def registry() -> CollectorRegistry:
    if multiprocess_enabled():
        reg = CollectorRegistry()
        multiprocess.MultiProcessCollector(reg)
        return reg
    return REGISTRY


def multiprocess_enabled() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def startup_hook(_app: Any, stack: Any) -> None:
    """When this worker stops, drop its live gauges from the shared directory."""
    if multiprocess_enabled():
        pid = os.getpid()
        stack.callback(lambda: multiprocess.mark_process_dead(pid))
