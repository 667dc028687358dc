"""Operations routes: ``/healthz``, ``/metrics`` and ``/pebble-api/openapi.json``.

None of them takes a token (a bad ``Authorization`` header is ignored): they say how the
server is, never what a caller owns. The OpenAPI document is the hand-written
``openapi.json`` beside this module; a test keeps it equal to the v1 route table.
"""

from __future__ import annotations

import json
import sqlite3
from functools import cache
from importlib import resources
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .http import json_response, runtime
from .metrics import Metrics

__all__ = ["api_routes", "openapi_document", "routes"]


async def healthz(request: Request) -> Response:
    """Liveness and the store: 200 ``{"status": "ok"}``, else 503 with the reason."""
    rt = runtime(request)
    problem: str | None = None
    try:
        rt.store.check_readable()
    except (sqlite3.Error, RuntimeError) as exc:  # RuntimeError: the store is not open
        problem = f"the store can't be read: {exc}"
    if problem is None and rt.store.failure is not None:
        problem = f"the store is failing: {rt.store.failure.message}"
    if problem is not None:
        response = json_response({"status": "failing", "reason": problem}, 503)
        response.headers["retry-after"] = "1"
        return response
    return json_response({"status": "ok"})


async def metrics(request: Request) -> Response:
    """The Prometheus text exposition of the runtime's metrics."""
    collected: Metrics = request.app.state.metrics
    return Response(collected.exposition(), media_type=CONTENT_TYPE_LATEST)


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the v1 routes (paths relative to ``/pebble-api``)."""
    text = (
        resources.files("daisi_async.server").joinpath("openapi.json").read_text(encoding="utf-8")
    )
    document: dict[str, Any] = json.loads(text)
    return document


async def openapi(request: Request) -> Response:
    """``GET /pebble-api/openapi.json``."""
    document = dict(openapi_document())
    base = str(request.base_url).rstrip("/")
    document["servers"] = [{"url": base + "/pebble-api"}]
    return json_response(document)


routes = [
    Route("/healthz", healthz),
    Route("/metrics", metrics),
]
"""The routes at the root of the server."""

api_routes = [Route("/openapi.json", openapi)]
"""The routes under ``/pebble-api``."""
