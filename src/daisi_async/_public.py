"""Public names show as ``daisi_async.Name`` (in tracebacks, reprs, pickles), not as the
private module that defines them."""

from __future__ import annotations

from typing import TypeVar

__all__ = ["public"]

T = TypeVar("T", bound=type)


def public(cls: T) -> T:
    """Mark ``cls`` as a public name of the package (its ``__module__`` is ``daisi_async``).

    Example:
        >>> @public
        ... class Thing: ...
        >>> Thing.__module__
        'daisi_async'
    """
    cls.__module__ = "daisi_async"
    return cls
