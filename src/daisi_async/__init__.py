"""daisi-async: call Daisies (Python functions served over HTTP) from asyncio and scripts.

Example:
    >>> from daisi_async import AsyncDaisi
    >>> async with AsyncDaisi("Add Two Numbers") as d:
    ...     print(await d.compute(firstNumber=5, secondNumber=6))
    11

Public names are imported on first use, so that the runtime's worker processes (which
live inside this package) start without loading the HTTP client stack. The package
logs to ``logging.getLogger("daisi_async")`` (silent unless configured).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
"""The one place the version is written (pyproject.toml reads it from here)."""

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
    "DaisiNotConnectedError": "._errors",
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
"""The public names and where they live: the one list (``__all__`` is made from it;
the ``TYPE_CHECKING`` imports below only show it to type checkers, and a test keeps
them equal)."""

__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:  # "X as X": re-exported names, for type checkers
    from ._config import DEFAULT_BASE_URL as DEFAULT_BASE_URL
    from ._config import RetryPolicy as RetryPolicy
    from ._daisi import AsyncDaisi as AsyncDaisi
    from ._daisi import Workers as Workers
    from ._errors import DaisiArgumentError as DaisiArgumentError
    from ._errors import DaisiAuthenticationError as DaisiAuthenticationError
    from ._errors import DaisiCancelledError as DaisiCancelledError
    from ._errors import DaisiConnectionError as DaisiConnectionError
    from ._errors import DaisiError as DaisiError
    from ._errors import DaisiExecutionError as DaisiExecutionError
    from ._errors import DaisiNotConnectedError as DaisiNotConnectedError
    from ._errors import DaisiNotFoundError as DaisiNotFoundError
    from ._errors import DaisiPermissionError as DaisiPermissionError
    from ._errors import DaisiProtocolError as DaisiProtocolError
    from ._errors import DaisiRequestError as DaisiRequestError
    from ._errors import DaisiSerializationError as DaisiSerializationError
    from ._errors import DaisiServerError as DaisiServerError
    from ._errors import DaisiTimeoutError as DaisiTimeoutError
    from ._execution import AsyncDaisiExecution as AsyncDaisiExecution
    from ._map import MapRun as MapRun
    from ._sync import Daisi as Daisi
    from ._sync import DaisiExecution as DaisiExecution
    from ._sync import DaisiMapExecution as DaisiMapExecution
    from ._sync import SyncWorkers as SyncWorkers
    from ._wire import ExecutionStatus as ExecutionStatus


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'daisi_async' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
