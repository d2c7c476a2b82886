"""The job of a stored Dwolla webhook event: make its "Needs attention" case (attention.service).

Enqueued by the webhook view in the event's own transaction. A Dwolla error fails the job and the queue
tries it again (the event stays unprocessed until a run succeeds); a run after a success does nothing.
The worker's one Dwolla client (built with its runtime) serves every job: its access token is reused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from supportlens.attention.service import ATTENTION_QUEUE, HANDLE_EVENT_TASK, handle_event
from supportlens.integrations.dwolla.client import DwollaClient

if TYPE_CHECKING:
    import procrastinate


def _dwolla(runtime: Any) -> DwollaClient:
    if runtime.dwolla is None:
        raise RuntimeError("the worker's runtime was built without its vendor clients (Runtime.with_clients)")
    client: DwollaClient = runtime.dwolla
    return client


def register(app: procrastinate.App, runtime_of: Any) -> None:
    """Add the task to the queue app. `runtime_of(context)` is the worker's Runtime."""
    import procrastinate

    async def _handle(context: procrastinate.JobContext, event_id: str) -> None:
        runtime = runtime_of(context)
        await handle_event(
            runtime.sessionmaker,
            _dwolla(runtime),
            event_id=event_id,
            min_confidence=runtime.settings.mapping_min_confidence,
        )

    app.task(
        name=HANDLE_EVENT_TASK,
        queue=ATTENTION_QUEUE,
        pass_context=True,
        # Dwolla briefly down or rate limiting: 2, 4, 8, 16, 32, 64 s apart, then the job fails.
        retry=procrastinate.RetryStrategy(max_attempts=7, exponential_wait=2),
    )(_handle)
