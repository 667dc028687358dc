"""Reading and checking a Daisi's ``daisi.toml``.

Every key is optional: ``name``, ``owner``, ``description`` (strings), ``entry`` (a
file inside the folder), ``public`` (true/false), ``workers`` (a positive integer),
``timeout`` (positive seconds) and ``memory`` (bytes, or a size such as ``"512MB"``).
Unknown keys are ignored. A problem is reported as one ``invalid daisi.toml: ...``
message and that key falls back to its default.

Example:
    >>> errors: list[str] = []
    >>> config_from_mapping({"workers": 2, "timeout": "long"}, errors).workers
    2
    >>> errors
    ['invalid daisi.toml: timeout must be a positive number of seconds']
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..._values import parse_size

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_TIMEOUT",
    "DaisiConfig",
    "config_from_mapping",
    "parse_memory",
    "read_config",
]

CONFIG_FILE = "daisi.toml"

DEFAULT_TIMEOUT = 1800.0
"""The time limit of an execution, in seconds, when ``daisi.toml`` sets none."""

_INVALID = "invalid daisi.toml"


@dataclass(frozen=True)
class DaisiConfig:
    """The checked settings of one ``daisi.toml`` (None: not set, use the default)."""

    name: str | None = None
    owner: str | None = None
    description: str | None = None
    entry: str | None = None
    entry_set: bool = False
    """True when ``entry`` is in the file, even with an invalid value (no fallback then)."""
    public: bool = True
    workers: int | None = None
    timeout: float | None = None
    memory: int | None = None


def read_config(folder: Path, errors: list[str]) -> DaisiConfig:
    """The ``daisi.toml`` of ``folder`` (defaults when there is none); problems go to ``errors``."""
    file = folder / CONFIG_FILE
    if not file.is_file():
        return DaisiConfig()
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        errors.append(f"{_INVALID}: {exc}")
        return DaisiConfig()
    return config_from_mapping(data, errors)


def config_from_mapping(data: Mapping[str, Any], errors: list[str]) -> DaisiConfig:
    """Check the parsed TOML table ``data``; problems go to ``errors``."""
    return DaisiConfig(
        name=_string(data, "name", errors),
        owner=_string(data, "owner", errors),
        description=_string(data, "description", errors),
        entry=_entry(data, errors),
        entry_set="entry" in data,
        public=_public(data, errors),
        workers=_workers(data, errors),
        timeout=_timeout(data, errors),
        memory=_memory(data, errors),
    )


def _string(data: Mapping[str, Any], key: str, errors: list[str]) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        errors.append(f"{_INVALID}: {key} must be a string")
        return None
    return value.strip() or None


def _entry(data: Mapping[str, Any], errors: list[str]) -> str | None:
    value = data.get("entry")
    if "entry" in data and (not isinstance(value, str) or not value.strip()):
        errors.append(f"{_INVALID}: entry must be a file name")
        return None
    return value.strip() if isinstance(value, str) else None


def _public(data: Mapping[str, Any], errors: list[str]) -> bool:
    value = data.get("public", True)
    if not isinstance(value, bool):
        errors.append(f"{_INVALID}: public must be true or false")
        return True
    return value


def _workers(data: Mapping[str, Any], errors: list[str]) -> int | None:
    value = data.get("workers")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        errors.append(f"{_INVALID}: workers must be a positive integer")
        return None
    return value


def _timeout(data: Mapping[str, Any], errors: list[str]) -> float | None:
    value = data.get("timeout")
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        errors.append(f"{_INVALID}: timeout must be a positive number of seconds")
        return None
    return float(value)


def _memory(data: Mapping[str, Any], errors: list[str]) -> int | None:
    value = data.get("memory")
    if value is None:
        return None
    try:
        return parse_memory(value)
    except ValueError as exc:
        errors.append(f"{_INVALID}: memory: {exc}")
        return None


def parse_memory(value: object) -> int:
    """Bytes from an int or a size string like ``"8GB"`` or ``"512 MiB"`` (units of 1024).

    The one size rule of the project (:func:`daisi_async._values.parse_size`).

    Example:
        >>> parse_memory("512MB")
        536870912

    Raises:
        ValueError: not a positive size.
    """
    return parse_size(value)
