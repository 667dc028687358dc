"""The event stream of one execution (status changes and log lines), read with httpx-sse.

The stream is resumed after a dropped connection from the last event id it saw
(``Last-Event-ID``), so no event is missed or repeated; the server's ``retry:`` field
sets the wait before reconnecting. Resuming follows the one retry policy, counted from
the last event received.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from httpx_sse import EventSource

from ..._failures import dropped
from ..._log import logger
from ..._retry import Progress, retrying
from ..._transport import Transport, stream_errors
from ..._wire import ExecutionStatus
from .routes import EVENT_TIMEOUT, execution_path

__all__ = ["events"]


async def events(transport: Transport, eid: str) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """``(kind, payload)`` for every event of the execution, until its terminal status."""
    last = "0"
    progress = Progress()
    what = f"the event stream of execution {eid}"
    async for attempt in retrying(
        transport.settings.retries, retry=dropped, what=what, progress=progress
    ):
        with attempt:
            if attempt.retry_state.attempt_number > 1:
                logger.info("resuming %s after event %s", what, last)
            async with transport.stream(
                "GET",
                execution_path(eid, "/events"),
                headers={"last-event-id": last, "accept": "text/event-stream"},
                timeout=EVENT_TIMEOUT,
            ) as response:
                with stream_errors(response):
                    async for sse in EventSource(response).aiter_sse():
                        if sse.retry is not None:
                            progress.server_wait = sse.retry / 1000
                        if not sse.data:
                            continue
                        payload = json.loads(sse.data)
                        if not isinstance(payload, dict):
                            raise TypeError(f"an event must be an object, not {payload!r}")
                        last = sse.id or str(payload.get("seq", last))
                        progress.made()
                        yield sse.event, payload
                        status = payload["status"] if sse.event == "status" else None
                        if status is not None and ExecutionStatus(status).is_terminal:
                            return
            return  # the server ended the stream: the execution has ended
