"""The garbage collector of the runtime's process, set for a server (:func:`tune_gc`).

Python collects its oldest generation when enough objects have survived the younger
ones. A busy runtime keeps many objects alive on purpose (every execution in flight
has a task, futures, a record and its listeners; the store caches up to 50,000
finished records), so with the default thresholds (700, 10, 10) a full collection
walked all of them every second or so: in two 10,000-call gathers, 12 full collections
of about 0.1 s each, 1.5 s of the server's CPU in all (a fifth of it). With the
thresholds below the same gathers spend 0.25 s in the collector.

What Python itself imported and built before serving is frozen (:func:`gc.freeze`):
it lives as long as the process, and no collection walks it again.

Example:
    >>> tune_gc()  # doctest: +SKIP
"""

from __future__ import annotations

import gc

__all__ = ["THRESHOLDS", "tune_gc"]

THRESHOLDS = (50_000, 50, 100)
"""``gc.set_threshold`` of the runtime's process: allocations before a young collection,
then young collections per middle one and middle ones per full one."""


def tune_gc() -> None:
    """Freeze what exists now and set :data:`THRESHOLDS` (for a process that only serves)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
