"""Parameter descriptions from a function's docstring, for the endpoint schema.

The parsing is ``docstring-parser``'s (Google, NumPy, reST/Sphinx and Epydoc
styles); the Google parser also reads ``Keyword Args:`` and ``Other Parameters:``
sections. Every style is tried; a parameter described in several takes its
description from the style that describes the most parameters (so a docstring that
mixes two styles keeps both).
A description's lines are joined with single spaces; ``beta, gamma : int`` (NumPy)
describes both names, and ``*args`` / ``**kwargs`` are named without their stars.

Example:
    >>> param_descriptions("Add.\\n\\nArgs:\\n    a (int): The first,\\n        number.\\n")
    {'a': 'The first, number.'}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from docstring_parser import Docstring, DocstringParam, epydoc, google, numpydoc, rest

__all__ = ["param_descriptions"]

_GOOGLE = google.GoogleParser(
    [
        *google.DEFAULT_SECTIONS,
        *(
            google.Section(title, "param", google.SectionType.MULTIPLE)
            for title in ("Keyword Args", "Keyword Arguments", "Other Parameters")
        ),
    ]
)

_PARSERS: tuple[Callable[[str], Docstring], ...] = (
    _GOOGLE.parse,
    numpydoc.parse,
    rest.parse,
    epydoc.parse,
)


def param_descriptions(doc: str) -> dict[str, str]:
    """``{parameter name: description}`` from a docstring (best effort, never raises)."""
    results: list[dict[str, str]] = []
    for parse in _PARSERS:
        try:
            parsed = parse(doc)
        except Exception:  # ParseError, or whatever else a malformed docstring provokes
            continue
        results.append(_descriptions(parsed.params))
    merged: dict[str, str] = {}
    for found in sorted(results, key=len, reverse=True):  # stable: ties keep _PARSERS order
        for name, text in found.items():
            merged.setdefault(name, text)
    return merged


def _descriptions(params: Iterable[DocstringParam]) -> dict[str, str]:
    found: dict[str, str] = {}
    for param in params:
        text = " ".join((param.description or "").split())
        if not text:
            continue
        for raw in param.arg_name.split(","):
            name = raw.strip().lstrip("*")
            if name.isidentifier():
                found.setdefault(name, text)
    return found
