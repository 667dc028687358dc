"""Find Daisies in a folder and describe their endpoints, without running their code.

Everything here is static analysis (``ast``): the server process never imports or
executes a Daisi's module; its workers do.

**What makes a folder a Daisi.** A Daisi is a folder holding:

* an optional ``daisi.toml`` (:mod:`.config`): ``name`` (default: the folder's
  name), ``owner``, ``description``, ``entry``, ``public``, ``timeout``, ``memory``,
  and the workers' lifecycle: ``workers`` (a pinned count) or ``min_workers`` and
  ``max_workers``, ``idle_timeout``, ``import_timeout``;
* an entry module, whose top-level public functions are the endpoints
  (:mod:`.endpoints`). It is, first match wins (:mod:`.entry`):

  1. ``entry`` from ``daisi.toml``, which may be in a sub-folder
     (``entry = "src/app.py"``) but may not leave the folder;
  2. else ``app.py``, else ``main.py``;
  3. else the folder's only ``.py`` file (``setup.py``, ``conftest.py``,
     ``test_*.py`` and ``_*.py`` do not count);
  4. else the one ``.py`` file that defines public top-level functions and does
     not import a Daisi client (``pydaisi``, ``daisi_async``, ``daisi``): a client
     script such as ``run.py`` beside the Daisi is not the Daisi;
  5. else the Daisi is broken, with a message naming the candidates and the
     ``entry = "..."`` line to add to ``daisi.toml``;

* an optional ``requirements.txt`` (:mod:`.requirements`), in any encoding pip
  reads. Requirements that are not installed are listed in
  ``missing_requirements`` but never break the Daisi: the import decides;
* an optional description file: ``DAISI.md``, else ``README.md``, in any letter
  case; else the entry module's docstring.

The worker runs in the Daisi's folder with :attr:`DaisiSpec.import_paths` first on
``sys.path``: the entry module's folder (sibling imports), then the Daisi's folder.

The name is unique per owner; the id is stable (a uuid5 of ``owner/name``), so it
survives restarts. A problem found here (invalid ``daisi.toml``, no entry module, a
``SyntaxError``) breaks only that Daisi: it is listed with its ``error``.

Example:
    >>> registry = Registry(load_daisies(Path("examples/daisies")))  # doctest: +SKIP
    >>> registry.find("Add Two Numbers").endpoints["compute"].to_json()  # doctest: +SKIP
"""

from __future__ import annotations

from .config import CONFIG_FILE, DEFAULT_TIMEOUT, parse_memory
from .loader import load_daisi, load_daisies
from .registry import Registry
from .requirements import REQUIREMENTS_FILE
from .schema import ArgumentsError, Endpoint, Param
from .spec import NAMESPACE, DaisiSpec, daisi_id

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_TIMEOUT",
    "NAMESPACE",
    "REQUIREMENTS_FILE",
    "ArgumentsError",
    "DaisiSpec",
    "Endpoint",
    "Param",
    "Registry",
    "daisi_id",
    "load_daisi",
    "load_daisies",
    "parse_memory",
]
