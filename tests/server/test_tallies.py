"""Tallied counters and histograms expose exactly what ``prometheus_client``'s own
metrics expose for the same observations."""

from __future__ import annotations

import math

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from daisi_async.server.tallies import Tallies

BOUNDS = (0.005, 0.01, 0.1, 1, 2.5, 300, 1800)
VALUES = [0.0, 0.005, 0.0051, 0.01, 0.5, 1.0, 2.5, 299.9, 1800, 1800.1, 1e9]


@pytest.fixture(autouse=True)
def _no_created() -> None:
    disable_created_metrics()  # type: ignore[no-untyped-call]


def test_a_counter_reads_as_a_prometheus_counter() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    tallies = Tallies()
    counter = tallies.counter("demo_calls", "Calls made.", ["daisi", "status"])
    ours.register(tallies)
    reference = Counter("demo_calls", "Calls made.", ["daisi", "status"], registry=theirs)
    moves = (("b/x", "QUEUED", 3), ("a/y", "FINISHED", 2), ("b/x", "FAILED", 1))
    for daisi, status, times in moves:
        for _ in range(times):
            counter.inc(daisi, status)
            reference.labels(daisi, status).inc()
    assert generate_latest(ours) == generate_latest(theirs)


def test_a_histogram_reads_as_a_prometheus_histogram() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    tallies = Tallies()
    histogram = tallies.histogram("demo_seconds", "Time taken.", ["route"], BOUNDS)
    ours.register(tallies)
    reference = Histogram("demo_seconds", "Time taken.", ["route"], buckets=BOUNDS, registry=theirs)
    for i, value in enumerate(VALUES):
        route = "/a" if i % 3 else "/b"
        histogram.observe(value, route)
        reference.labels(route).observe(value)
    assert generate_latest(ours) == generate_latest(theirs)


def test_a_value_on_a_bound_counts_in_that_bound_s_bucket() -> None:
    tallies = Tallies()
    histogram = tallies.histogram("edge_seconds", "Edges.", [], (1, 2))
    for value in (1.0, 2.0, math.nextafter(2.0, 3.0)):
        histogram.observe(value)
    (family,) = [f for f in tallies.collect() if f.name == "edge_seconds"]
    buckets = {s.labels["le"]: s.value for s in family.samples if s.name.endswith("_bucket")}
    assert buckets == {"1.0": 1.0, "2.0": 2.0, "+Inf": 3.0}


def test_nothing_observed_exposes_only_the_help_and_type_lines() -> None:
    registry = CollectorRegistry()
    tallies = Tallies()
    tallies.counter("idle_calls", "Nothing yet.", ["daisi"])
    registry.register(tallies)
    assert generate_latest(registry) == (
        b"# HELP idle_calls_total Nothing yet.\n# TYPE idle_calls_total counter\n"
    )
