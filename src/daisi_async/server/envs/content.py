"""What a Daisi's environment holds, and the key that names it.

A Daisi's ``requirements.txt`` is decoded as pip decodes it (see
:mod:`daisi_async.server.registry.requirements`) and normalized: comments, blank
lines, line continuations, spacing and the letter case of distribution names do not
matter, and neither does the order of requirement lines (option lines such as
``--extra-index-url`` keep their order: it sets the indexes' priority). ``-r FILE``
includes are read and inlined (relative to the file that names them, as pip does),
``-c FILE`` constraints are gathered apart. The key hashes the result with the
interpreter the environment is made from and the installer options that change
what gets installed (``--index-url``, ``--find-links``); ``--offline`` is not part of
it (an environment built online is just as good offline). A requirement that names
a local path (``-e .``, ``./lib``) is resolved against the Daisi's folder, so the
folder is then part of the key.

Example:
    >>> a = normalize_text("Numpy >= 1.0   # fast\\npandas\\n")
    >>> b = normalize_text("pandas\\r\\nnumpy>=1.0\\r\\n")
    >>> a == b, a.lines
    (True, ('numpy>=1.0', 'pandas'))
"""

from __future__ import annotations

import hashlib
import json
import platform
import re
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from ..registry.requirements import (
    _COMMENT,  # the comment rule pip uses, shared with the registry
    REQUIREMENTS_FILE,
    _logical_lines,
    decode_requirements,
)

__all__ = ["EnvOptions", "Requirements", "environment_key", "normalize_text", "read_requirements"]

MAX_INCLUDE_DEPTH = 10
"""``-r`` includes deeper than this are refused (a cycle, or a mistake)."""

_INCLUDE = re.compile(r"^(-r|--requirement|-c|--constraint)(?:\s*=\s*|\s+|(?=[^-\s]))(\S.*)$")
_LOCAL = re.compile(r"^(-e\s|--editable[\s=]|\.|/|~|file:)")


@dataclass(frozen=True)
class EnvOptions:
    """How Daisies' environments are built (``daisi serve`` options).

    Example:
        >>> EnvOptions(find_links=("/srv/wheels",), offline=True).shared
        False
    """

    index_url: str | None = None
    """``--index-url``: the package index in place of PyPI."""
    find_links: tuple[str, ...] = ()
    """``--find-links``: folders or pages of wheels and source archives (repeatable)."""
    offline: bool = False
    """``--offline``: the installer uses no network (local files and its cache only)."""
    shared: bool = False
    """``--shared-env``: every Daisi runs in the server's own environment."""
    max_builds: int = 2
    """Builds running at once; others wait for a slot."""
    build_timeout: float = 3600.0
    """Seconds a build may take before it is stopped and counted as failed."""


@dataclass(frozen=True)
class Requirements:
    """A Daisi's normalized requirements (``-r`` inlined), ready to hand to the installer."""

    options: tuple[str, ...] = ()
    """Option lines (``--extra-index-url URL``, ``--pre``, ...), in their order."""
    lines: tuple[str, ...] = ()
    """Requirement lines (``-e PATH`` included), normalized, sorted, without repeats."""
    constraints: tuple[str, ...] = ()
    """Lines of the ``-c`` files, normalized, sorted."""
    local: bool = False
    """Whether a line names a local path (resolved against the Daisi's folder)."""
    error: str | None = field(default=None, compare=False)
    """Why the file could not be read completely (an include is missing), else None."""

    @property
    def installs_anything(self) -> bool:
        """Whether there is something to install (an options-only file has nothing)."""
        return bool(self.lines)

    def text(self) -> str:
        """The requirements file the installer reads (UTF-8)."""
        return "".join(f"{line}\n" for line in (*self.options, *self.lines))

    def constraints_text(self) -> str:
        """The constraints file the installer reads (UTF-8), empty when there are none."""
        return "".join(f"{line}\n" for line in self.constraints)


def read_requirements(folder: Path) -> Requirements | None:
    """The normalized ``requirements.txt`` of a Daisi folder; None when it has none."""
    file = folder / REQUIREMENTS_FILE
    if not file.is_file():
        return None
    try:
        data = file.read_bytes()
    except OSError as exc:
        return Requirements(error=f"{REQUIREMENTS_FILE} could not be read: {exc.strerror}")
    return _normalize(decode_requirements(data), base=folder, name=REQUIREMENTS_FILE)


def normalize_text(text: str) -> Requirements:
    """The normalized requirements of a requirements file's text (includes unresolved)."""
    return _normalize(text, base=None, name=REQUIREMENTS_FILE)


def _normalize(text: str, *, base: Path | None, name: str) -> Requirements:
    options: list[str] = []
    lines: set[str] = set()
    constraints: set[str] = set()
    errors: list[str] = []
    _collect(text, base, name, 0, options, lines, constraints, errors, into_constraints=False)
    local = any(_LOCAL.match(line) for line in (*lines, *constraints))
    return Requirements(
        options=tuple(dict.fromkeys(options)),
        lines=tuple(sorted(lines)),
        constraints=tuple(sorted(constraints)),
        local=local,
        error="; ".join(errors) or None,
    )


def _collect(
    text: str,
    base: Path | None,
    name: str,
    depth: int,
    options: list[str],
    lines: set[str],
    constraints: set[str],
    errors: list[str],
    *,
    into_constraints: bool,
) -> None:
    for raw in _logical_lines(text):
        line = " ".join(_COMMENT.sub("", raw).split())
        if not line:
            continue
        include = _INCLUDE.match(line)
        if include and base is not None and "://" not in include.group(2):
            nested = include.group(1) in ("-c", "--constraint") or into_constraints
            target = (base / include.group(2)).resolve()
            if depth >= MAX_INCLUDE_DEPTH:
                errors.append(f"{name}: {line}: includes nest deeper than {MAX_INCLUDE_DEPTH}")
                continue
            try:
                data = target.read_bytes()
            except OSError as exc:
                errors.append(f"{name}: {line}: {exc.strerror or exc}")
                continue
            _collect(
                decode_requirements(data),
                target.parent,
                include.group(2),
                depth + 1,
                options,
                lines,
                constraints,
                errors,
                into_constraints=nested,
            )
        elif into_constraints:
            constraints.add(_canonical(line))
        elif line.startswith("-") and not line.startswith(("-e ", "--editable")):
            options.append(line)
        else:
            lines.add(_canonical(line))


def _canonical(line: str) -> str:
    """A requirement line with its name normalized (``Scikit_Learn>=1`` -> ``scikit-learn>=1``).

    Lines ``packaging`` does not parse (URLs, paths, options after a requirement) stay as
    they are.
    """
    try:
        requirement = Requirement(line)
    except InvalidRequirement:
        return line
    requirement.name = canonicalize_name(requirement.name)
    return str(requirement)


def interpreter_identity() -> dict[str, str]:
    """What makes one Python another: implementation, version, ABI, platform, install."""
    return {
        "implementation": sys.implementation.name,
        "version": platform.python_version(),
        "abi": sysconfig.get_config_var("SOABI") or "",
        "platform": sysconfig.get_platform(),
        "base_prefix": sys.base_prefix,
    }


def environment_key(
    requirements: Requirements,
    *,
    options: EnvOptions,
    folder: Path | None = None,
) -> str:
    """The name of the environment for ``requirements`` (20 hex digits).

    Example:
        >>> r = normalize_text("toypkg==1.0")
        >>> environment_key(r, options=EnvOptions()) == environment_key(
        ...     r, options=EnvOptions(offline=True))
        True
        >>> environment_key(r, options=EnvOptions()) == environment_key(
        ...     r, options=EnvOptions(index_url="https://mirror.example/simple"))
        False
    """
    material = {
        "options": list(requirements.options),
        "requirements": list(requirements.lines),
        "constraints": list(requirements.constraints),
        "folder": str(folder) if requirements.local and folder is not None else None,
        "python": interpreter_identity(),
        "index_url": options.index_url,
        "find_links": list(options.find_links),
    }
    blob = json.dumps(material, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:20]
