"""The v1 dialect, split by concern.

``dialect`` (the :class:`V1Dialect` that puts the parts together), ``submit`` (batched
submissions), ``wait`` (multiplexed waits), ``events`` (the per-execution event stream,
read with httpx-sse), ``blobs`` (binary arguments and results), ``routes`` (paths and
timeouts).
"""

from .dialect import V1Dialect

__all__ = ["V1Dialect"]
