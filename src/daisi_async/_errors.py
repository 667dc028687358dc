"""The exception tree: every error this package raises is a :class:`DaisiError`.

``httpx`` errors are translated in one place (:mod:`._failures`); a failed remote
execution raises :class:`DaisiExecutionError`, which is also an instance of the remote
exception's class when that class can be imported here (``except ZeroDivisionError``
works), as Ray's task errors are.
"""

from __future__ import annotations

import builtins
import difflib
import importlib
import sys
from collections.abc import Iterable
from typing import Any

from ._public import public

__all__ = [
    "DaisiArgumentError",
    "DaisiAuthenticationError",
    "DaisiCancelledError",
    "DaisiConnectionError",
    "DaisiError",
    "DaisiExecutionError",
    "DaisiNotConnectedError",
    "DaisiNotFoundError",
    "DaisiPermissionError",
    "DaisiProtocolError",
    "DaisiRequestError",
    "DaisiSerializationError",
    "DaisiServerError",
    "DaisiTimeoutError",
]


@public
class DaisiError(Exception):
    """Root of every error raised by ``daisi_async``.

    Example:
        >>> try:
        ...     raise DaisiNotFoundError("no Daisi named 'x'")
        ... except DaisiError as exc:
        ...     print(type(exc).__name__)
        DaisiNotFoundError
    """

    def __init__(
        self,
        message: str = "",
        *,
        status_code: int | None = None,
        execution_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.execution_id = execution_id
        """The execution concerned, if any (a cancelled or failed one, say)."""

    def __str__(self) -> str:
        return self.message


@public
class DaisiNotFoundError(DaisiError, LookupError):
    """An unknown (or invisible) Daisi, endpoint or execution (HTTP 404).

    Example:
        >>> isinstance(DaisiNotFoundError("x"), LookupError)
        True
    """


@public
class DaisiNotConnectedError(DaisiError, AttributeError):
    """An endpoint (or the description) of a Daisi that is not connected yet, or closed.

    An ``AttributeError`` too, so ``hasattr(d, "compute")`` is simply false.

    Example:
        >>> hasattr(AsyncDaisi("Add Two Numbers"), "compute")
        False
    """


@public
class DaisiAuthenticationError(DaisiError):
    """The access token was refused (HTTP 401).

    Example:
        >>> DaisiAuthenticationError("invalid access token", status_code=401).status_code
        401
    """


@public
class DaisiPermissionError(DaisiError, PermissionError):
    """The caller may not do this (HTTP 403).

    Example:
        >>> isinstance(DaisiPermissionError("no"), PermissionError)
        True
    """


@public
class DaisiRequestError(DaisiError, ValueError):
    """The server refused a request as malformed or too large (HTTP 400, 409, 413).

    Example:
        >>> DaisiRequestError("too large", status_code=413).status_code
        413
    """


@public
class DaisiArgumentError(DaisiRequestError):
    """Arguments that do not fit the endpoint (HTTP 422); ``.param`` names the culprit.

    Client-side checks raise :class:`TypeError` before anything is sent, as a local
    function would; this error comes from the server's own check.

    Example:
        >>> DaisiArgumentError("missing 'x'", param="x").param
        'x'
    """

    def __init__(
        self, message: str = "", *, param: str | None = None, status_code: int | None = 422
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.param = param


@public
class DaisiSerializationError(DaisiError, TypeError):
    """An argument or a result could not be (de)serialized.

    Example:
        >>> DaisiSerializationError("can't pickle", param="x").param
        'x'
    """

    def __init__(self, message: str = "", *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@public
class DaisiConnectionError(DaisiError, ConnectionError):
    """The server could not be reached, even after retries.

    Example:
        >>> isinstance(DaisiConnectionError("refused"), ConnectionError)
        True
    """


@public
class DaisiServerError(DaisiError):
    """The server kept failing (HTTP 5xx) after retries.

    Example:
        >>> DaisiServerError("bad gateway", status_code=502).status_code
        502
    """


@public
class DaisiProtocolError(DaisiServerError):
    """The server's reply could not be understood: not JSON, the wrong shape, or garbled.

    Usually the base URL points at something that is not a Daisi runtime.

    Example:
        >>> isinstance(DaisiProtocolError("not JSON"), DaisiServerError)
        True
    """


@public
class DaisiTimeoutError(DaisiError, TimeoutError):
    """Waiting took longer than the given timeout (the execution goes on remotely).

    Example:
        >>> isinstance(DaisiTimeoutError("late"), TimeoutError)
        True
    """


@public
class DaisiCancelledError(DaisiError):
    """The execution was cancelled (``await ex.cancel()`` or by another client).

    Example:
        >>> DaisiCancelledError("cancelled", execution_id="e1").execution_id
        'e1'
    """


@public
class DaisiExecutionError(DaisiError):
    """A remote execution failed; the message holds the remote traceback.

    Attributes: ``traceback`` (remote traceback text), ``exc_type`` (dotted name of the
    remote exception class, e.g. ``"builtins.ZeroDivisionError"``), ``execution_id``.

    Example:
        >>> err = DaisiExecutionError.from_remote(
        ...     execution_id="e1", exc_type="builtins.ZeroDivisionError",
        ...     message="division by zero", traceback="Traceback ...")
        >>> isinstance(err, ZeroDivisionError), err.exc_type
        (True, 'builtins.ZeroDivisionError')
    """

    def __init__(
        self,
        message: str = "",
        *,
        execution_id: str | None = None,
        exc_type: str | None = None,
        remote_message: str = "",
        traceback: str = "",
    ) -> None:
        DaisiError.__init__(self, message, execution_id=execution_id)
        self.exc_type = exc_type
        self.remote_message = remote_message
        self.traceback = traceback

    @classmethod
    def from_remote(
        cls,
        *,
        execution_id: str | None,
        exc_type: str | None,
        message: str,
        traceback: str,
    ) -> DaisiExecutionError:
        """Build the error of a failed execution, as an instance of the remote class if possible."""
        head = f"execution {execution_id} failed" if execution_id else "execution failed"
        summary = f"{exc_type or 'Error'}: {message}"
        text = f"{head}: {summary}"
        if traceback.strip():
            text += "\n\nRemote traceback:\n" + traceback.rstrip()
        kwargs: dict[str, Any] = {
            "execution_id": execution_id,
            "exc_type": exc_type,
            "remote_message": message,
            "traceback": traceback,
        }
        remote_cls = _importable_exception(exc_type)
        if remote_cls is not None:
            try:
                sub = _mixed_class(remote_cls)
                err: DaisiExecutionError = sub.__new__(sub, text)
                DaisiExecutionError.__init__(err, text, **kwargs)
                err.args = (text,)
                return err
            except Exception:  # exotic layout or constructor: fall back to the plain error
                pass
        return cls(text, **kwargs)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the choices close to ``word`` (any case), else ``""``.

    Example:
        >>> did_you_mean("Add Two Number", ["Add Two Numbers", "Echo"])
        "; did you mean 'Add Two Numbers'?"
    """
    by_case = {c.lower(): c for c in choices}
    close = difflib.get_close_matches(word.lower(), list(by_case), n=3, cutoff=0.6)
    if not close:
        return ""
    names = [repr(by_case[c]) for c in close]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]
    return f"; did you mean {listed}?"


_MIXED: dict[type[BaseException], type[DaisiExecutionError]] = {}
_NEVER = (KeyboardInterrupt, SystemExit, GeneratorExit)


def _importable_exception(dotted: str | None) -> type[BaseException] | None:
    if not dotted or "." not in dotted or dotted.startswith("daisi."):
        return None
    # Nested classes: "pkg.mod.Outer.Inner" -> try progressively shorter module names.
    parts = dotted.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module_name, qualname = ".".join(parts[:split]), ".".join(parts[split:])
        try:
            module = builtins if module_name == "builtins" else sys.modules.get(module_name)
            if module is None:
                module = importlib.import_module(module_name)
        except Exception:
            continue
        obj: Any = module
        try:
            for attr in qualname.split("."):
                obj = getattr(obj, attr)
        except AttributeError:
            continue
        if isinstance(obj, type) and issubclass(obj, Exception) and not issubclass(obj, _NEVER):
            return obj
        return None
    return None


def _mixed_class(remote: type[BaseException]) -> type[DaisiExecutionError]:
    cls = _MIXED.get(remote)
    if cls is None:
        if issubclass(remote, DaisiExecutionError):
            cls = remote
        else:
            cls = type(
                f"DaisiExecutionError[{remote.__name__}]",
                (DaisiExecutionError, remote),
                {"__module__": __name__, "__str__": DaisiError.__str__},
            )
        _MIXED[remote] = cls
    return cls
