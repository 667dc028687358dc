"""How the worker reports a failure: ``{"type", "message", "traceback"}``.

Tracebacks start at the Daisi's own code: the frames of this program (and of
``ast`` and ``asyncio``, which run the Daisi's code for it) are left out.

Example:
    >>> error("daisi.ArgumentError", "could not unpickle argument 'x'", "")
    {'type': 'daisi.ArgumentError', 'message': "could not unpickle argument 'x'", 'traceback': ''}
"""

from __future__ import annotations

import ast
import os
import traceback

__all__ = ["error", "format_exception", "qualified_type", "safe_str"]

_PROGRAM_DIR = os.path.normcase(os.path.dirname(os.path.abspath(__file__))) + os.sep
# asyncio's folder, found without importing it (the worker loads it only for async endpoints)
_STDLIB_DIR = os.path.dirname(os.path.abspath(os.__file__))
_ASYNCIO_DIR = os.path.normcase(os.path.join(_STDLIB_DIR, "asyncio")) + os.sep
_AST_FILE = os.path.normcase(os.path.abspath(ast.__file__))


def _is_internal_file(filename: str) -> bool:
    name = os.path.normcase(os.path.abspath(filename))
    return name == _AST_FILE or name.startswith((_PROGRAM_DIR, _ASYNCIO_DIR))


def format_exception(exc: BaseException, *, strip: bool = True) -> str:
    """The traceback text of ``exc``; with ``strip``, from the Daisi's first frame on."""
    tb = exc.__traceback__
    if strip:
        while tb is not None and _is_internal_file(tb.tb_frame.f_code.co_filename):
            tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def qualified_type(exc: BaseException) -> str:
    """``module.QualName`` of the exception's class (``builtins.ZeroDivisionError``)."""
    cls = type(exc)
    return f"{cls.__module__}.{cls.__qualname__}"


def error(kind: str, message: str, tb: str) -> dict[str, str]:
    """An error as the ``done`` and ``import_error`` frames carry it."""
    return {"type": kind, "message": message, "traceback": tb}


def safe_str(exc: BaseException) -> str:
    """``str(exc)``, or a placeholder when that raises."""
    try:
        return str(exc)
    except Exception:
        return f"<unprintable {type(exc).__name__}>"
