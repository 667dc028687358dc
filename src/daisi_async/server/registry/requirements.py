"""A Daisi's ``requirements.txt``: its requirements, and which are not installed.

The file is decoded as pip decodes it: a byte-order mark says the encoding (UTF-8,
UTF-16 LE/BE as PowerShell's ``pip freeze > requirements.txt`` writes, UTF-32),
else a ``# -*- coding: NAME -*-`` line among the first two, else UTF-8. Lines are
read as pip reads them: a trailing backslash continues a line, ``#`` starts a
comment (at the start of a line or after a space), and option lines (``-r``,
``-c``, ``-e``, ``--index-url`` ...) and options after a requirement
(``--hash=...``) are not requirements. Names come from ``packaging``'s
:class:`~packaging.requirements.Requirement` (extras, versions, environment markers
and ``name @ url`` are understood); a bare URL or path has no name and is not
checked, and a requirement whose marker excludes this environment is not needed.

A requirement that is not installed never breaks a Daisi: the name listed may
differ from the module imported (``sklearn`` vs ``scikit-learn``), so whether the
entry module imports decides.

Example:
    >>> parse_requirements("numpy>=1.0  # fast\\n-r more.txt\\nscikit-learn[all] ; os_name > ''")
    ('numpy>=1.0', "scikit-learn[all] ; os_name > ''")
"""

from __future__ import annotations

import codecs
import importlib.metadata
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

__all__ = [
    "REQUIREMENTS_FILE",
    "decode_requirements",
    "missing_requirements",
    "parse_requirements",
    "read_requirements",
    "requirement_name",
]

REQUIREMENTS_FILE = "requirements.txt"

_BOMS = (  # UTF-32 first: its little-endian mark starts with UTF-16's
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_CODING = re.compile(rb"coding[:=]\s*([-\w.]+)")
_COMMENT = re.compile(r"(^|\s+)#.*$")


def read_requirements(folder: Path) -> tuple[str, ...]:
    """The requirements of the ``requirements.txt`` in ``folder`` (none if it has none)."""
    file = folder / REQUIREMENTS_FILE
    try:
        data = file.read_bytes() if file.is_file() else b""
    except OSError:
        return ()
    return parse_requirements(decode_requirements(data))


def decode_requirements(data: bytes) -> str:
    """The text of a requirements file, decoded as pip decodes it (never raises)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace")
    for line in data.split(b"\n")[:2]:
        match = _CODING.search(line) if line.lstrip().startswith(b"#") else None
        if match:
            try:
                return data.decode(match.group(1).decode("ascii"), errors="replace")
            except LookupError:
                break
    return data.decode("utf-8", errors="replace")


def parse_requirements(text: str) -> tuple[str, ...]:
    """The requirement strings of a requirements file's text, in order."""
    found: list[str] = []
    for line in _logical_lines(text):
        line = _COMMENT.sub("", line).strip()
        requirement: list[str] = []
        for token in line.split():
            if token.startswith("-"):
                break  # an option line, or options after the requirement
            requirement.append(token)
        if requirement:
            found.append(" ".join(requirement))
    return tuple(found)


def requirement_name(line: str) -> str | None:
    """The distribution name of a requirement, None when it has none or is not needed here.

    Example:
        >>> requirement_name("Scikit_Learn[all]>=1 ; python_version >= '3'")
        'Scikit_Learn'
        >>> requirement_name("pywin32 ; sys_platform == 'nonexistent'") is None
        True
    """
    try:
        requirement = Requirement(line)
    except InvalidRequirement:  # a URL, a path, or not a requirement at all
        return None
    if requirement.marker is not None:
        try:
            if not requirement.marker.evaluate():
                return None
        except Exception:  # a marker this environment cannot evaluate: keep it
            pass
    return requirement.name


def missing_requirements(requirements: Iterable[str]) -> tuple[str, ...]:
    """Names (as written) of the requirements not installed in this environment.

    Names are compared normalized (``Scikit_Learn`` is ``scikit-learn``).
    """
    missing: dict[str, str] = {}
    installed: set[str] | None = None
    for line in requirements:
        name = requirement_name(line)
        if name is None or canonicalize_name(name) in missing:
            continue
        if _is_installed(name):
            continue
        if installed is None:
            installed = _installed_names()
        if canonicalize_name(name) not in installed:
            missing[canonicalize_name(name)] = name
    return tuple(missing.values())


def _is_installed(name: str) -> bool:
    """The quick look-up (by folder name, already normalized by ``importlib.metadata``)."""
    try:
        importlib.metadata.distribution(name)
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return False
    return True


def _installed_names() -> set[str]:
    return {canonicalize_name(d.name or "") for d in importlib.metadata.distributions()}


def _logical_lines(text: str) -> Iterator[str]:
    """Lines with backslash continuations joined (a comment line is never continued)."""
    pending: list[str] = []
    for line in text.splitlines():
        if line.endswith("\\") and not _COMMENT.match(line):
            pending.append(line[:-1])
            continue
        if pending:
            yield "".join(pending) + (" " + line if _COMMENT.match(line) else line)
            pending = []
        else:
            yield line
    if pending:
        yield "".join(pending)
