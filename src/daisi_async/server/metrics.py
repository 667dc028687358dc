"""Prometheus metrics of one runtime (``GET /metrics``), with ``prometheus-client``.

* ``daisi_executions_total{daisi,status}``: status changes committed since the server
  started (``QUEUED`` counts submissions, ``FINISHED``/``FAILED``/``CANCELLED`` ends);
* ``daisi_execution_duration_seconds{daisi,status}``: run time (started to ended) of
  the executions that ended after running;
* ``daisi_queue_depth{daisi}`` and ``daisi_executions_running{daisi}``: executions
  QUEUED and RUNNING now (from the store, at scrape time);
* ``daisi_workers{daisi}``, ``daisi_workers_idle{daisi}``, ``daisi_workers_target{daisi}``:
  worker processes in service, idle, and asked for, per Daisi pool;
* ``daisi_http_requests_total{method,route,status}`` and
  ``daisi_http_request_duration_seconds{method,route}``: requests by route template
  (``/pebble-api/v1/executions/{eid}``; ``(unmatched)`` for unknown paths), timed to
  the end of the reply (a stream's whole life).

A private Daisi is counted as ``daisi="(private)"``: the metrics never name a Daisi
that an anonymous caller can't see.

Example:
    >>> metrics = Metrics(runtime)  # doctest: +SKIP
    >>> metrics.exposition()[:6]  # doctest: +SKIP
    b'# HELP'
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from starlette.routing import Mount, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .store import Event, ExecutionRecord
from .tallies import Tallies

if TYPE_CHECKING:
    from .engine import Runtime
    from .registry import DaisiSpec

__all__ = ["PRIVATE_LABEL", "Metrics", "MetricsMiddleware", "worker_counts"]

PRIVATE_LABEL = "(private)"
UNMATCHED = "(unmatched)"
_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)
_HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
"""``prometheus_client``'s default buckets, which this histogram had always used."""


def worker_counts(rt: Runtime) -> dict[str, tuple[int, int, int]]:
    """``daisi_id -> (in service, idle, target)`` of each worker pool of the runtime
    (target: the pinned count, else the workers running or starting)."""
    pools = rt.lifecycle.pools
    return {did: (len(pool.pids), pool.idle_count, pool.number) for did, pool in pools.items()}


class Metrics:
    """The runtime's metrics in a registry of their own (one per app).

    Example:
        >>> metrics = Metrics(runtime)  # doctest: +SKIP
        >>> metrics.exposition()  # doctest: +SKIP
    """

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.registry = CollectorRegistry(auto_describe=True)
        tallies = Tallies()  # plain numbers, read at scrape time (see .tallies)
        self.executions = tallies.counter(
            "daisi_executions",
            "Execution status changes committed since the server started.",
            ["daisi", "status"],
        )
        self.durations = tallies.histogram(
            "daisi_execution_duration_seconds",
            "Run time of executions, from a worker taking them to their end.",
            ["daisi", "status"],
            _DURATION_BUCKETS,
        )
        self.requests = tallies.counter(
            "daisi_http_requests",
            "HTTP requests by method, route template and status.",
            ["method", "route", "status"],
        )
        self.latency = tallies.histogram(
            "daisi_http_request_duration_seconds",
            "HTTP request time, to the end of the reply, by method and route template.",
            ["method", "route"],
            _HTTP_BUCKETS,
        )
        self.registry.register(tallies)
        self.registry.register(_LiveCollector(self))
        self._labels: dict[str, tuple[DaisiSpec, str]] = {}
        self._remove = rt.store.listen_all(self._on_event)

    def close(self) -> None:
        """Stop counting executions."""
        self._remove()

    def daisi_label(self, daisi_id: str) -> str:
        """The ``daisi`` label: the full name of a public Daisi, else ``(private)``."""
        spec = self.rt.registry.get(daisi_id)
        if spec is None:
            return daisi_id  # no longer served: its id names nothing secret
        known = self._labels.get(daisi_id)
        if known is None or known[0] is not spec:  # (a reload makes a new spec)
            known = self._labels[daisi_id] = (
                spec,
                spec.full_name if spec.public else PRIVATE_LABEL,
            )
        return known[1]

    def _on_event(self, rec: ExecutionRecord, ev: Event | None) -> None:
        if ev is None or ev.kind != "status":
            return
        label = self.daisi_label(rec.daisi_id)
        self.executions.inc(label, ev.data)
        if rec.status.is_terminal and rec.started_at is not None and rec.finished_at is not None:
            self.durations.observe(max(0.0, rec.finished_at - rec.started_at), label, ev.data)

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)


class _LiveCollector:
    """Gauges read at scrape time: queue depth, running executions, workers."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        return self._families(fill=True)

    def _families(self, *, fill: bool = False) -> list[GaugeMetricFamily]:
        queued = GaugeMetricFamily(
            "daisi_queue_depth", "Executions waiting for a worker (QUEUED).", labels=["daisi"]
        )
        running = GaugeMetricFamily(
            "daisi_executions_running", "Executions running now.", labels=["daisi"]
        )
        workers = GaugeMetricFamily(
            "daisi_workers", "Worker processes in service, per Daisi.", labels=["daisi"]
        )
        idle = GaugeMetricFamily(
            "daisi_workers_idle", "Worker processes waiting for a job.", labels=["daisi"]
        )
        target = GaugeMetricFamily(
            "daisi_workers_target", "Worker processes asked for.", labels=["daisi"]
        )
        families = [queued, running, workers, idle, target]
        if not fill:
            return families
        label = self.metrics.daisi_label
        rt = self.metrics.rt
        sums: dict[tuple[int, str], float] = {}

        def add(family: int, daisi: str, value: float) -> None:
            sums[family, daisi] = sums.get((family, daisi), 0) + value

        for spec in rt.registry.all():  # every Daisi has a line, 0 when idle
            add(0, label(spec.id), 0)
            add(1, label(spec.id), 0)
        for (daisi_id, status), n in rt.store.active_counts().items():
            add(0 if status == "QUEUED" else 1, label(daisi_id), n)
        for daisi_id, counts in worker_counts(rt).items():
            for i, n in enumerate(counts):
                add(2 + i, label(daisi_id), n)
        for (family, daisi), value in sorted(sums.items()):
            families[family].add_metric([daisi], value)
        return families


class MetricsMiddleware:
    """ASGI middleware counting HTTP requests by route template and status.

    Put it inside any middleware that copies the scope: it reads the route the router
    matched from the scope once the request is done.

    Example:
        >>> Middleware(MetricsMiddleware, metrics=metrics)  # doctest: +SKIP
    """

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        root = scope.get("root_path", "")
        start = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = _template(scope, root)
            method = scope.get("method", "")
            method = method if method in _METHODS else "other"  # labels stay few
            metrics = self.metrics
            metrics.requests.inc(method, route, str(status))
            metrics.latency.observe(time.perf_counter() - start, method, route)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
"""Methods that are a ``method`` label of their own; any other is ``other``."""


def _template(scope: Scope, root: str) -> str:
    """The template of the route that served ``scope``: the mounts' paths + its own."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED
    prefix = str(scope.get("root_path", ""))[len(root) :]
    if isinstance(route, Mount):
        if isinstance(route.app, Router):  # no route inside the mount matched
            return UNMATCHED
        return prefix + "/{path}"  # an app of its own (the static files)
    return prefix + path
