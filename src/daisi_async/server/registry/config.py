"""Reading and checking a Daisi's ``daisi.toml``.

Every key is optional: ``name``, ``owner``, ``description`` (strings), ``entry`` (a
file inside the folder), ``public`` (true/false), ``timeout`` (positive seconds) and
``memory`` (bytes, or a size such as ``"512MB"``); the workers' lifecycle:
``min_workers`` (workers kept running even when idle, from startup; 0 or more),
``max_workers`` (the most workers the Daisi's calls start; 1 or more),
``idle_timeout`` (seconds an idle worker above ``min_workers`` lives) and
``import_timeout`` (seconds a worker may take to import the Daisi); ``workers`` (a
positive integer) pins the count (``min_workers = max_workers = workers``), so it
goes alone. ``[env]`` is a table of settings given to the Daisi's workers as
environment variables (``NAME = "value"``: names of letters, digits and ``_``, values
strings; not ``DAISI_BASE_URL``, which the runtime sets). Unknown keys are ignored.
A problem is reported as one ``invalid daisi.toml: ...`` message and that key falls
back to its default.

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
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..._values import parse_size
from ..workers.environment import valid_variables

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
    min_workers: int | None = None
    max_workers: int | None = None
    idle_timeout: float | None = None
    import_timeout: float | None = None
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    """``[env]``: environment variables for the Daisi's workers."""


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
    workers = _count(data, "workers", 1, errors)
    low = _count(data, "min_workers", 0, errors)
    high = _count(data, "max_workers", 1, errors)
    if workers is not None and (low is not None or high is not None):
        errors.append(
            f"{_INVALID}: workers pins the number of workers; "
            "set either workers or min_workers/max_workers"
        )
        low = high = None
    if low is not None and high is not None and low > high:
        errors.append(f"{_INVALID}: min_workers ({low}) is over max_workers ({high})")
        low = high = None
    return DaisiConfig(
        name=_string(data, "name", errors),
        owner=_string(data, "owner", errors),
        description=_string(data, "description", errors),
        entry=_entry(data, errors),
        entry_set="entry" in data,
        public=_public(data, errors),
        workers=workers,
        timeout=_seconds(data, "timeout", errors),
        memory=_memory(data, errors),
        min_workers=low,
        max_workers=high,
        idle_timeout=_seconds(data, "idle_timeout", errors),
        import_timeout=_seconds(data, "import_timeout", errors),
        env=_env(data, errors),
    )


def _env(data: Mapping[str, Any], errors: list[str]) -> Mapping[str, str]:
    """``[env]``: the valid settings (a problem is reported, that setting left out)."""
    table = data.get("env")
    if table is None:
        return MappingProxyType({})
    if not isinstance(table, Mapping):
        errors.append(f'{_INVALID}: env must be a table of NAME = "value" settings ([env])')
        return MappingProxyType({})
    return MappingProxyType(valid_variables(table, errors, f"{_INVALID}: env: "))


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


def _count(data: Mapping[str, Any], key: str, minimum: int, errors: list[str]) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer of at least {minimum}"
        errors.append(f"{_INVALID}: {key} must be {what}")
        return None
    return value


def _seconds(data: Mapping[str, Any], key: str, errors: list[str]) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        errors.append(f"{_INVALID}: {key} must be a positive number of seconds")
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
