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
* ``DAISI_BASE_URL`` (set by the runtime, pointing back at itself);
* the variables named with ``daisi serve --env-pass NAME`` (repeatable), on purpose.

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

__all__ = ["ALLOWED_NAMES", "ALLOWED_PREFIXES", "is_variable_name", "worker_environment"]

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

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def is_variable_name(name: str) -> bool:
    """Whether ``name`` can name an environment variable (letters, digits, ``_``; no
    leading digit)."""
    return bool(_NAME.match(name))


def worker_environment(
    source: Mapping[str, str] | None = None,
    *,
    passed: Iterable[str] = (),
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a worker: the allowed variables of ``source`` (default: this
    process's environment), the ``passed`` names that ``source`` sets, then ``extra``
    (e.g. ``DAISI_BASE_URL``) over them.
    """
    if source is None:
        source = os.environ
    wanted = set(passed)
    env = {
        name: value
        for name, value in source.items()
        if name in ALLOWED_NAMES or name.startswith(ALLOWED_PREFIXES) or name in wanted
    }
    if extra:
        env.update(extra)
    return env
