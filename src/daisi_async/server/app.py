"""The Starlette application of the local runtime: legacy and v1 routes under ``/pebble-api``,
the web page at ``/`` and the operations routes (``/healthz``, ``/metrics``,
``/pebble-api/openapi.json``)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount

from .._wire import API_PREFIX
from . import ops, routes_legacy, routes_v1, web
from .engine import Runtime, RuntimeConfig
from .errors import ApiError
from .http import error_response, json_response
from .metrics import Metrics, MetricsMiddleware
from .rawpath import RawPathMiddleware
from .store import StorageError, Store

log = logging.getLogger("daisi_async.server")


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _storage_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StorageError)
    response = json_response(
        {"error": {"status": exc.status, "code": exc.code, "message": exc.message}}, exc.status
    )
    response.headers["retry-after"] = "1"
    return response


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "bad_request")
    message = "no such route" if exc.status_code == 404 else str(exc.detail)
    return json_response(
        {"error": {"status": exc.status_code, "code": code, "message": message}},
        exc.status_code,
    )


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return json_response(
        {"error": {"status": 500, "code": "internal", "message": f"internal error: {exc!r}"}}, 500
    )


def create_app(
    config: RuntimeConfig,
    *,
    on_ready: Callable[[], None] | None = None,
    store: Store | None = None,
) -> Starlette:
    """Build the ASGI app; the runtime starts and stops with the app's lifespan.

    Example:
        >>> config = RuntimeConfig(root=Path("examples/daisies"), store_dir=Path(".daisi"))
        >>> app = create_app(config)  # then serve it with uvicorn
    """
    runtime = Runtime(config, store=store)
    metrics = Metrics(runtime)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await runtime.start()
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            metrics.close()
            await runtime.stop()

    # Routes are tried in order: the v1 ones (what the client calls most) first. No
    # path is in both lists, so the order between them changes no answer.
    api: list[BaseRoute] = list(routes_legacy.routes)
    top: list[BaseRoute] = list(ops.routes)
    if not config.legacy_only:
        api = [*routes_v1.routes, *ops.api_routes, *api]
        top += web.routes
    app = Starlette(
        routes=[Mount(API_PREFIX, routes=api), *top],
        lifespan=lifespan,
        # RawPathMiddleware copies the scope: metrics, inside it, see the matched route.
        middleware=[
            Middleware(RawPathMiddleware),
            Middleware(MetricsMiddleware, metrics=metrics),
        ],
        exception_handlers={
            ApiError: _api_error,
            StorageError: _storage_error,
            HTTPException: _http_error,
            Exception: _server_error,
        },
    )
    app.state.runtime = runtime
    app.state.metrics = metrics
    return app
