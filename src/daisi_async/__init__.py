"""daisi-async: call Daisies (Python functions served over HTTP) from asyncio and scripts."""

from __future__ import annotations

from ._wire import ExecutionStatus

__version__ = "0.1.0"

__all__ = ["ExecutionStatus", "__version__"]
