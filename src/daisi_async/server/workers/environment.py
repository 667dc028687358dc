"""The environment variables a worker process gets: an allowlist, never the whole server's.

A server's environment holds its operator's secrets (cloud credentials, API tokens,
database URLs), and a Daisi can print ``os.environ`` into logs its callers read. So
a worker gets only:

* what locates things and sets the locale: ``PATH``, ``HOME``, ``USER``, ``LOGNAME``,
  ``LANG``, ``LANGUAGE``, every ``LC_*``, ``TZ``, ``TMPDIR``, ``TMP``, ``TEMP``;
* what Python needs to start and behave the same as the server's: ``PYTHONHOME``,
  ``PYTHONPATH`` (after which the pool puts the folder holding ``daisi_async`` first),
  ``PYTHONUTF8``, ``PYTHONIOENCODING``, ``PYTHONHASHSEED``, ``PYTHONDONTWRITEBYTECODE``,
  ``PYTHONUNBUFFERED``, ``PYTHONNOUSERSITE``, ``PYTHONUSERBASE``;
* what common native libraries read: ``LD_LIBRARY_PATH``; the CA bundles
  ``SSL_CERT_FILE``, ``SSL_CERT_DIR``, ``REQUESTS_CA_BUNDLE``, ``CURL_CA_BUNDLE``;
  the thread counts ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``;
* the variables named with ``daisi serve --env-pass NAME`` (repeatable), on purpose;
* the Daisi's settings: ``[env]`` in its ``daisi.toml``;
* the Daisi's secrets: its table in ``daisi serve --secrets FILE``;
* ``DAISI_BASE_URL`` (set by the runtime, pointing back at itself).

A later source wins over an earlier one for the same name, in that order: the
allowlisted server environment < ``--env-pass`` < ``[env]`` < secrets <
``DAISI_BASE_URL``. In the sandbox, ``HOME`` and ``TMPDIR`` (``TMP``, ``TEMP``) of
the server's environment are replaced by the worker's private folders (``[env]`` may
still set them), and ``bwrap`` sets ``PWD`` (the Daisi's folder); a Daisi with its own
environment gets its ``PATH`` and ``VIRTUAL_ENV``.

Nothing else: not ``PYTHONSTARTUP``, ``LD_PRELOAD`` or ``PYTHONWARNINGS`` (they run
or load code), not proxy settings (``HTTP_PROXY`` and friends may carry a password in
their URL), not anything token-like. Pass those with ``--env-pass`` when a Daisi needs them.

Example:
    >>> worker_environment({"PATH": "/bin", "AWS_SECRET_ACCESS_KEY": "x", "LC_ALL": "C"})
    {'PATH': '/bin', 'LC_ALL': 'C'}
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

__all__ = [
    "ALLOWED_NAMES",
    "ALLOWED_PREFIXES",
    "MAX_VALUE_LENGTH",
    "RUNTIME_NAMES",
    "is_variable_name",
    "valid_variables",
    "variable_problem",
    "worker_environment",
]

ALLOWED_NAMES = frozenset(
    {
        # where things are, who runs, locale and time
        "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ",
        "TMPDIR", "TMP", "TEMP",
        # Python
        "PYTHONHOME", "PYTHONPATH", "PYTHONUTF8", "PYTHONIOENCODING", "PYTHONHASHSEED",
        "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PYTHONNOUSERSITE", "PYTHONUSERBASE",
        # native libraries: loader path, CA bundles, thread pools
        "LD_LIBRARY_PATH", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
    }
)  # fmt: skip
"""Variables a worker inherits from the server when they are set."""

ALLOWED_PREFIXES = ("LC_",)
"""Prefixes of variables a worker inherits (the locale categories)."""

RUNTIME_NAMES = frozenset({"DAISI_BASE_URL"})
"""Variables the runtime sets for every worker; ``[env]`` and secrets may not."""

MAX_VALUE_LENGTH = 32 * 1024
"""The longest value ``[env]`` or a secret may give a variable, in characters."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def is_variable_name(name: str) -> bool:
    """Whether ``name`` can name an environment variable (letters, digits, ``_``; no
    leading digit)."""
    return bool(_NAME.match(name))


def variable_problem(name: object, value: object) -> str | None:
    """What is wrong with setting variable ``name`` to ``value`` for a worker (a Daisi's
    ``[env]`` or secrets), or None. The message never quotes the value.

    Example:
        >>> variable_problem("API_KEY", "abc") is None
        True
        >>> variable_problem("API KEY", "abc")
        "'API KEY' is not an environment variable name (letters, digits and _)"
        >>> variable_problem("PORT", 8080)
        'PORT must be a string (write it in quotes), not int'
    """
    if not isinstance(name, str) or not is_variable_name(name):
        return f"{name!r} is not an environment variable name (letters, digits and _)"
    if name in RUNTIME_NAMES:
        return f"{name} is set by the runtime"
    if not isinstance(value, str):
        return f"{name} must be a string (write it in quotes), not {type(value).__name__}"
    if "\0" in value:
        return f"{name} must not contain a NUL character"
    if len(value) > MAX_VALUE_LENGTH:
        return f"{name} is longer than {MAX_VALUE_LENGTH} characters"
    return None


def valid_variables(
    table: Mapping[object, object], problems: list[str], prefix: str
) -> dict[str, str]:
    """The settings of ``table`` that :func:`variable_problem` accepts; each other one adds
    ``prefix + problem`` to ``problems``.

    Example:
        >>> said = []
        >>> valid_variables({"A": "1", "PORT": 8080}, said, "env: ")
        {'A': '1'}
        >>> said
        ['env: PORT must be a string (write it in quotes), not int']
    """
    values: dict[str, str] = {}
    for name, value in table.items():
        problem = variable_problem(name, value)
        if problem is not None:
            problems.append(prefix + problem)
        else:
            values[str(name)] = str(value)
    return values


def worker_environment(
    source: Mapping[str, str] | None = None,
    *,
    passed: Iterable[str] = (),
    settings: Mapping[str, str] | None = None,
    secrets: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a worker: the allowed variables of ``source`` (default: this
    process's environment), the ``passed`` names that ``source`` sets, then the Daisi's
    ``settings`` (``[env]``), its ``secrets``, then ``extra`` (``DAISI_BASE_URL``), each
    over the ones before.

    Example:
        >>> worker_environment({"PATH": "/bin", "X": "server"}, passed=["X"],
        ...                    settings={"X": "toml"}, secrets={"KEY": "s3cr3t"})
        {'PATH': '/bin', 'X': 'toml', 'KEY': 's3cr3t'}
    """
    if source is None:
        source = os.environ
    wanted = set(passed)
    env = {
        name: value
        for name, value in source.items()
        if name in ALLOWED_NAMES or name.startswith(ALLOWED_PREFIXES) or name in wanted
    }
    for layer in (settings, secrets, extra):
        if layer:
            env.update(layer)
    return env
