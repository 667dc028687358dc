"""The v1 routes and the timeouts of their long-lived requests."""

from __future__ import annotations

from urllib.parse import quote

import httpx

from ..._wire import MAX_WAIT_SECONDS

__all__ = [
    "EVENT_TIMEOUT",
    "MAX_BATCH",
    "MAX_STREAMS",
    "STREAM_TIMEOUT",
    "WAIT_BATCH",
    "execution_path",
]

MAX_BATCH = 1000
"""Submissions per batch request."""
WAIT_BATCH = 5000
"""Executions per multiplexed wait request."""
MAX_STREAMS = 8
"""Long-lived requests (submit or wait streams) open at once, per dialect."""
STREAM_TIMEOUT = httpx.Timeout(30.0, read=MAX_WAIT_SECONDS + 30.0, connect=10.0)
EVENT_TIMEOUT = httpx.Timeout(30.0, read=None, connect=10.0)


def execution_path(eid: str, rest: str = "") -> str:
    """The route of one execution (the id is quoted: it may come from the caller).

    Example:
        >>> execution_path("a/b", "/logs")
        '/v1/executions/a%2Fb/logs'
    """
    return f"/v1/executions/{quote(eid, safe='')}{rest}"
