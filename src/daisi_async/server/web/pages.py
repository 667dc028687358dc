"""The web page's routes: Daisies, a Daisi, executions, an execution, a result download.

Pages are read-only GETs rendered on the server. The caller is the ``Authorization``
header when there is one, else the ``daisi_token`` cookie that the page's script keeps
equal to the token saved in the browser (``localStorage``). Only these GET pages read
the cookie: every change (running an endpoint, cancelling) goes through the API, which
takes the token from the ``Authorization`` header alone, so a page of another site can't
act for the user (no CSRF).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..._wire import ExecutionStatus
from ..auth import AuthError
from ..engine import Runtime
from ..errors import ApiError, not_found
from ..http import json_text_bytes, runtime
from ..registry import DaisiSpec
from ..registry.loader import description_file
from ..routes_runs import DEFAULT_LIMIT, list_page, run_filter
from ..store import ExecutionRecord, StorageError
from ..workers.jobs import error_text
from .render import daisi_href, daisi_state, markdown_html, page

__all__ = ["COOKIE", "page_user", "routes"]

COOKIE = "daisi_token"
"""The cookie's name on default ports; else ``daisi_token_PORT`` (cookies are shared by
every port of a host: two runtimes on one machine keep their tokens apart)."""
MAX_DOC_CHARS = 200_000
MAX_LOG_EVENTS = 5_000
STATUSES = [s.value for s in ExecutionStatus if s is not ExecutionStatus.NOT_STARTED]

Handler = Callable[[Request, Runtime, str | None, dict[str, Any]], Awaitable[Response]]


def page_user(request: Request) -> tuple[str | None, str | None]:
    """``(user, warning)``: who is browsing; a token that is not valid browses anonymously."""
    rt = runtime(request)
    header = request.headers.get("authorization")
    port = request.url.port
    token = request.cookies.get(f"{COOKIE}_{port}" if port else COOKIE)
    value = header or (f"token {unquote(token)}" if token else None)
    try:
        return rt.auth.user(value), None
    except AuthError as exc:
        return (
            None,
            f"The token saved in this browser is not valid here ({exc}): you browse anonymously.",
        )


def _page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A page route: the common context, and errors as pages."""

    async def endpoint(request: Request) -> Response:
        rt = runtime(request)
        user, warning = page_user(request)
        context: dict[str, Any] = {
            "user": user,
            "warning": warning,
            "auth_enabled": rt.auth.enabled,
            "title": "",
        }
        try:
            return await handler(request, rt, user, context)
        except ApiError as exc:
            context.update(title=f"{exc.status}", status=exc.status, message=exc.message)
            return page("error.html", context, exc.status)
        except StorageError as exc:
            context.update(title="503", status=503, message=f"the store is failing: {exc.message}")
            return page("error.html", context, 503)

    return endpoint


def _visible_specs(rt: Runtime, user: str | None) -> list[DaisiSpec]:
    return [
        s for s in rt.registry.all() if rt.auth.can_see_daisi(user, owner=s.owner, public=s.public)
    ]


def _href(rt: Runtime, spec: DaisiSpec) -> str:
    return daisi_href(spec, unique=rt.registry.find(spec.full_name) is spec)


async def daisies(request: Request, rt: Runtime, user: str | None, ctx: dict[str, Any]) -> Response:
    """``/``: the Daisies the caller sees."""
    rows = []
    for spec in _visible_specs(rt, user):
        body = rt.daisi_json(spec)
        state, reason = daisi_state(body)
        rows.append(
            {"spec": spec, "body": body, "state": state, "reason": reason, "href": _href(rt, spec)}
        )
    ctx.update(title="Daisies", rows=rows)
    return page("daisies.html", ctx)


async def daisi(request: Request, rt: Runtime, user: str | None, ctx: dict[str, Any]) -> Response:
    """``/daisies/{name}``: a Daisi's description, endpoints and forms, its recent runs."""
    spec = rt.find_daisi(unquote(request.path_params["name"]), user)
    body = rt.daisi_json(spec)
    state, reason = daisi_state(body)
    doc = description_file(spec.path) or spec.description
    flt = run_filter(rt, user, daisi=spec.id, status=None)
    ctx.update(
        title=spec.name,
        spec=spec,
        body=body,
        state=state,
        reason=reason,
        doc=markdown_html(doc[:MAX_DOC_CHARS]) if doc else None,
        endpoints=list(spec.endpoints.values()),
        recent=list_page(rt, flt, limit=10, before=None),
        href=_href(rt, spec),
    )
    return page("daisi.html", ctx)


def _daisi_names(rt: Runtime, user: str | None) -> dict[str, str]:
    return {s.id: s.full_name for s in _visible_specs(rt, user)}


async def executions(
    request: Request, rt: Runtime, user: str | None, ctx: dict[str, Any]
) -> Response:
    """``/executions``: the caller's executions, newest first, live."""
    q = request.query_params
    flt = run_filter(rt, user, daisi=q.get("daisi") or None, status=q.get("status") or None)
    before = q.get("before") or None
    records = list_page(rt, flt, limit=DEFAULT_LIMIT, before=before)
    ctx.update(
        title="Executions",
        records=records,
        names=_daisi_names(rt, user),
        statuses=STATUSES,
        daisi_id=flt.daisi_id or "",
        status=",".join(flt.statuses),
        before=before or "",
        next=records[-1].id if len(records) == DEFAULT_LIMIT else None,
    )
    return page("executions.html", ctx)


def _arguments(rt: Runtime, rec: ExecutionRecord) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name, arg in rec.args.items():
        ((kind, value),) = arg.items()
        row: dict[str, Any] = {"name": name, "kind": kind, "value": value}
        if kind == "blob":
            blob = rt.store.get_blob(value)
            row["size"] = blob.size if blob is not None else None
        rows.append(row)
    return rows


async def execution(
    request: Request, rt: Runtime, user: str | None, ctx: dict[str, Any]
) -> Response:
    """``/executions/{eid}``: arguments, live logs, result or traceback, cancel."""
    rec = rt.execution(request.path_params["eid"], user)
    after = max(0, rec.seq - MAX_LOG_EVENTS)
    events = rt.store.events(rec.id, after=after)
    spec = rt.registry.get(rec.daisi_id)
    seen = spec is not None and rt.auth.can_see_daisi(user, owner=spec.owner, public=spec.public)
    ctx.update(
        title=f"Execution {rec.id[:8]}",
        rec=rec,
        daisi_name=spec.full_name if seen and spec else rec.daisi_id,
        daisi_href=_href(rt, spec) if seen and spec else None,
        arguments=_arguments(rt, rec),
        lines=[e for e in events if e.kind == "log"],
        skipped=after > 0,
        seq=events[-1].seq if events else after,
        error=error_text(rec.error),
        terminal=rec.status.is_terminal,
    )
    return page("execution.html", ctx)


async def download(request: Request) -> Response:
    """``/executions/{eid}/download``: the result as a file (dill bytes, or JSON text)."""
    rt = runtime(request)
    user, _warning = page_user(request)
    rec = rt.execution(request.path_params["eid"], user)
    if rec.status is not ExecutionStatus.FINISHED or rec.result_key is None:
        raise ApiError(
            409, "not_ready", f"execution {rec.id} is {rec.status.value}; it has no result"
        )
    headers = {"x-content-type-options": "nosniff", "cache-control": "no-store"}
    if rec.result_json is not None:
        headers["content-disposition"] = f'attachment; filename="{rec.id}.json"'
        data = json_text_bytes(rec.result_json)
        return Response(data, media_type="application/json", headers=headers)
    await rt.fetch_result(rec)
    blob = rt.blob(rec.result_key, user)
    if blob is None:
        raise not_found(f"the result of execution {rec.id} is gone")
    headers["content-disposition"] = f'attachment; filename="{rec.id}.dill"'
    if blob.data is not None:
        return Response(blob.data, media_type="application/octet-stream", headers=headers)
    assert blob.path is not None
    return FileResponse(blob.path, media_type="application/octet-stream", headers=headers)


routes: list[BaseRoute] = [
    Route("/", _page(daisies)),
    Route("/daisies/{name:path}", _page(daisi)),
    Route("/executions", _page(executions)),
    Route("/executions/{eid}", _page(execution)),
    Route("/executions/{eid}/download", download),
    Mount("/static", StaticFiles(packages=[("daisi_async.server.web", "static")]), name="static"),
]
"""The web page's routes, served at the root of the server."""
