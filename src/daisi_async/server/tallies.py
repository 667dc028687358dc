"""Labelled counters and histograms kept as plain numbers, read by Prometheus only at
scrape time (:class:`Tallies`, a ``prometheus_client`` collector).

Every execution moves the runtime's counters three times and every request twice. A
``prometheus_client`` metric pays a label lookup, a lock and a method call or two for
each; here a change is one dictionary update on the event loop, and the families are
built when ``/metrics`` is read (on the same loop: nothing is shared across threads).

Example:
    >>> tallies = Tallies()
    >>> calls = tallies.counter("demo_calls", "Calls made.", ["kind"])
    >>> calls.inc("fast")
    >>> [s.value for s in next(iter(tallies.collect())).samples]
    [1.0]
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

__all__ = ["Tallied", "TalliedHistogram", "Tallies"]


class Tallied:
    """A counter by label values: ``name_total{labels}``."""

    __slots__ = ("documentation", "labels", "name", "values")

    def __init__(self, name: str, documentation: str, labels: Sequence[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = list(labels)
        self.values: dict[tuple[str, ...], float] = {}

    def inc(self, *labels: str) -> None:
        """Add one to the counter of these label values."""
        values = self.values
        values[labels] = values.get(labels, 0.0) + 1.0

    def family(self) -> CounterMetricFamily:
        """The counter's samples now."""
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        for labels, value in self.values.items():  # (first seen, first: as prometheus_client)
            family.add_metric(list(labels), value)
        return family


class TalliedHistogram:
    """A histogram by label values: ``name_bucket``, ``name_sum`` and ``name_count``."""

    __slots__ = ("bounds", "documentation", "labels", "name", "values")

    def __init__(
        self, name: str, documentation: str, labels: Sequence[str], bounds: Sequence[float]
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = list(labels)
        self.bounds = sorted(float(b) for b in bounds if not math.isinf(b))
        # per label values: the count of each bucket alone (the last: above every
        # bound), then the sum of the values observed
        self.values: dict[tuple[str, ...], list[float]] = {}

    def observe(self, value: float, *labels: str) -> None:
        """Count ``value`` in its bucket (the first bound it is at most) and in the sum."""
        counts = self.values.get(labels)
        if counts is None:
            counts = self.values[labels] = [0.0] * (len(self.bounds) + 2)
        counts[bisect.bisect_left(self.bounds, value)] += 1.0
        counts[-1] += value

    def family(self) -> HistogramMetricFamily:
        """The histogram's samples now (buckets cumulative, as Prometheus reads them)."""
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        names = [floatToGoString(b) for b in self.bounds] + ["+Inf"]  # type: ignore[no-untyped-call]
        for labels, counts in self.values.items():
            running = 0.0
            buckets: list[tuple[str, float]] = []
            for name, count in zip(names, counts[:-1], strict=True):
                running += count
                buckets.append((name, running))
            family.add_metric(list(labels), buckets, counts[-1])
        return family


class Tallies:
    """The counters and histograms of one registry: register it as a collector.

    Example:
        >>> registry.register(tallies)  # doctest: +SKIP
    """

    def __init__(self) -> None:
        self._metrics: list[Tallied | TalliedHistogram] = []

    def counter(self, name: str, documentation: str, labels: Sequence[str]) -> Tallied:
        """A new counter, ``name_total`` in the exposition."""
        metric = Tallied(name, documentation, labels)
        self._metrics.append(metric)
        return metric

    def histogram(
        self, name: str, documentation: str, labels: Sequence[str], bounds: Sequence[float]
    ) -> TalliedHistogram:
        """A new histogram with buckets at ``bounds`` (and ``+Inf``)."""
        metric = TalliedHistogram(name, documentation, labels, bounds)
        self._metrics.append(metric)
        return metric

    def collect(self) -> Iterable[Metric]:
        return [m.family() for m in self._metrics]

    def describe(self) -> Iterable[Metric]:
        return self.collect()
