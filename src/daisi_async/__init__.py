"""daisi-async: call Daisies (Python functions served over HTTP) from asyncio and scripts.

Example:
    >>> from daisi_async import AsyncDaisi
    >>> async with AsyncDaisi("Add Two Numbers") as d:  # doctest: +SKIP
    ...     print(await d.compute(firstNumber=5, secondNumber=6))
    11

Public names are imported on first use, so that the runtime's worker processes (which
live inside this package) start without loading the HTTP client stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "DEFAULT_BASE_URL": "._config",
    "RetryPolicy": "._config",
    "AsyncDaisi": "._daisi",
    "Workers": "._daisi",
    "DaisiArgumentError": "._errors",
    "DaisiAuthenticationError": "._errors",
    "DaisiCancelledError": "._errors",
    "DaisiConnectionError": "._errors",
    "DaisiError": "._errors",
    "DaisiExecutionError": "._errors",
    "DaisiNotFoundError": "._errors",
    "DaisiPermissionError": "._errors",
    "DaisiProtocolError": "._errors",
    "DaisiRequestError": "._errors",
    "DaisiSerializationError": "._errors",
    "DaisiServerError": "._errors",
    "DaisiTimeoutError": "._errors",
    "AsyncDaisiExecution": "._execution",
    "MapRun": "._map",
    "Daisi": "._sync",
    "DaisiExecution": "._sync",
    "DaisiMapExecution": "._sync",
    "SyncWorkers": "._sync",
    "ExecutionStatus": "._wire",
}

__all__ = [
    "DEFAULT_BASE_URL",
    "AsyncDaisi",
    "AsyncDaisiExecution",
    "Daisi",
    "DaisiArgumentError",
    "DaisiAuthenticationError",
    "DaisiCancelledError",
    "DaisiConnectionError",
    "DaisiError",
    "DaisiExecution",
    "DaisiExecutionError",
    "DaisiMapExecution",
    "DaisiNotFoundError",
    "DaisiPermissionError",
    "DaisiProtocolError",
    "DaisiRequestError",
    "DaisiSerializationError",
    "DaisiServerError",
    "DaisiTimeoutError",
    "ExecutionStatus",
    "MapRun",
    "RetryPolicy",
    "SyncWorkers",
    "Workers",
    "__version__",
]

if TYPE_CHECKING:
    from ._config import DEFAULT_BASE_URL, RetryPolicy
    from ._daisi import AsyncDaisi, Workers
    from ._errors import (
        DaisiArgumentError,
        DaisiAuthenticationError,
        DaisiCancelledError,
        DaisiConnectionError,
        DaisiError,
        DaisiExecutionError,
        DaisiNotFoundError,
        DaisiPermissionError,
        DaisiProtocolError,
        DaisiRequestError,
        DaisiSerializationError,
        DaisiServerError,
        DaisiTimeoutError,
    )
    from ._execution import AsyncDaisiExecution
    from ._map import MapRun
    from ._sync import Daisi, DaisiExecution, DaisiMapExecution, SyncWorkers
    from ._wire import ExecutionStatus


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'daisi_async' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
