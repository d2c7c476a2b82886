"""Structured JSON logs carrying the request id of the request being served.

Our own loggers (structlog) and the standard-library loggers of Uvicorn, SQLAlchemy, httpx2 and the
job runner all go through the same processors, so every line on stderr is one JSON object with
`timestamp`, `level`, `logger`, `event`, the `request_id` when a request is being served, and the
process id (several workers share one stream).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any

import structlog

from supportlens.masking import mask_pii_text
from supportlens.redaction import redact_secrets

TRANSPORT_LOGGERS = ("httpx2", "httpcore2", "httpx", "httpcore")

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)


def _add_request_id(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    rid = request_id_var.get()
    if rid is not None:
        event_dict.setdefault("request_id", rid)
    return event_dict


def _add_pid(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event_dict.setdefault("pid", os.getpid())
    return event_dict


# Fields that are ours and never hold customer text; masking them could only garble them.
_NOT_CUSTOMER_TEXT = frozenset({"timestamp", "level", "logger", "request_id", "pid", "client"})
# The uncached masking function: ingest's cache must neither hold log lines (tracebacks can be long,
# and would keep unmasked text in memory) nor lose its own entries to them.
_mask_text = mask_pii_text.__wrapped__


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return _mask_text(value)
    if isinstance(value, dict):
        return {k: _mask_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask_value(v) for v in value]
    return value


def mask_customer_pii(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: e-mails, phone and card numbers in any field (a vendor URL holding an e-mail,
    a database error quoting a value) are masked the way ingest masks stored text."""
    for key, value in event_dict.items():
        if key not in _NOT_CUSTOMER_TEXT:
            event_dict[key] = _mask_value(value)
    return event_dict


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        _add_request_id,
        _add_pid,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    shared = _shared_processors()
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    # Standard-library records (Uvicorn, SQLAlchemy, the job runner...) get the same treatment.
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder()],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_secrets,  # just before rendering: no secret reaches a log line, whoever logged it
            mask_customer_pii,  # nor a customer's e-mail, phone or card number (a vendor path, an error)
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.set_name("supportlens")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "supportlens"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # Uvicorn's access line holds the raw path with its query (`/api/search?q=jane@acme.io`,
    # `/api/customers/jane@acme.io`) and the client's address. Uvicorn writes it whenever the logger
    # has a handler, propagation included, so it is cut off here; middleware.py writes the access line
    # instead: route template, status, duration, request id and a keyed pseudonym of the address.
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True
    # The HTTP client logs every request's full URL at INFO, and vendors' URLs carry customers' e-mail
    # addresses (Dwolla's `?email=`, HubSpot's read by e-mail): our own upstream metrics and logs say
    # what an operator needs without them.
    for name in TRANSPORT_LOGGERS:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)
