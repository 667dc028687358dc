"""daisi-async: call Daisies (Python functions served over HTTP) from asyncio and scripts.

Example:
    >>> from daisi_async import AsyncDaisi
    >>> async with AsyncDaisi("Add Two Numbers") as d:  # doctest: +SKIP
    ...     print(await d.compute(firstNumber=5, secondNumber=6))
    11
"""

from __future__ import annotations

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
    DaisiRequestError,
    DaisiSerializationError,
    DaisiServerError,
    DaisiTimeoutError,
)
from ._execution import AsyncDaisiExecution
from ._map import MapRun
from ._sync import Daisi, DaisiExecution, DaisiMapExecution, SyncWorkers
from ._wire import ExecutionStatus

__version__ = "0.1.0"

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
