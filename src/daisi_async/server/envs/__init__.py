"""An environment per Daisi: its ``requirements.txt`` installed with ``uv``, cached.

The rule:

* A Daisi whose ``requirements.txt`` lists something to install gets a virtual
  environment of its own, made from the server's interpreter (``uv venv --python
  sys.executable``, without system site-packages) and filled by ``uv pip install``.
  A Daisi without one (or with one that lists nothing) runs in the server's
  environment, as does every Daisi under ``daisi serve --shared-env`` (a requirement
  missing there is then a warning on the console, and whether the module imports
  decides).
* Environments are kept in ``<store>/envs/<key>/`` and reused across restarts. The
  key hashes the normalized requirements (encoding, comments, spacing, name case and
  line order do not matter; ``-r`` includes are read), the interpreter (version,
  ABI, platform, installation) and the installer options that change the result
  (``--index-url``, ``--find-links``; not ``--offline``). Daisies with the same key
  share one environment. A folder without its completion marker (written last) is an
  unfinished build: it is removed and built again.
* Builds run in the background, at most two at once; the server answers meanwhile.
  A Daisi's ``state`` is ``building`` until its environment is ready; calls to it are
  accepted and wait QUEUED. A failed build breaks that Daisi only: its ``broken``
  and the calls to it (FAILED, type ``daisi.EnvironmentError``) quote the installer's
  last lines. ``GET /pebble-api/v1/daisies/{id}/build`` gives ``{"state", "log"}``;
  the log is also in ``<env>/build.log`` and on the console, each line prefixed with
  the Daisi's name. Credentials in URLs are masked in every line.
* Workers run ``<env>/bin/python``. The worker program (``daisi_async``) and ``dill``
  are the server's own, linked in rather than installed (see
  :func:`~.build.link_server`); nothing else of the server's environment shows
  through, and a Daisi that requires ``dill`` gets the server's.
* ``uv`` reads no configuration file (``--no-config``: a Daisi's folder must not
  configure its installer); its environment variables (``UV_INDEX_URL``,
  ``UV_CACHE_DIR``, proxies ...) apply. Options: ``--index-url URL``,
  ``--find-links PATH_OR_URL`` (repeatable), ``--offline``.

Example:
    >>> from daisi_async.server.envs import EnvOptions, normalize_text, environment_key
    >>> key = environment_key(normalize_text("toypkg==1.0"), options=EnvOptions())
    >>> len(key)
    20
"""

from __future__ import annotations

from .build import BuildFailed, link_server, redact
from .content import EnvOptions, Requirements, environment_key, normalize_text, read_requirements
from .manager import ENVIRONMENT_ERROR, EnvironmentBroken, Environments

__all__ = [
    "ENVIRONMENT_ERROR",
    "BuildFailed",
    "EnvOptions",
    "EnvironmentBroken",
    "Environments",
    "Requirements",
    "environment_key",
    "link_server",
    "normalize_text",
    "read_requirements",
    "redact",
]
