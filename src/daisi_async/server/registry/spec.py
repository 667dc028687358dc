"""What the server knows about one Daisi (:class:`DaisiSpec`), and Daisi ids.

Example:
    >>> daisi_id("me", "Adder") == daisi_id("ME", "adder")
    True
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .schema import Endpoint

__all__ = ["NAMESPACE", "DaisiSpec", "daisi_id", "duplicate_id"]

NAMESPACE = uuid.UUID("6f1c2a52-3b5e-4f0e-9a57-0d4a1a1e9d11")
"""The uuid5 namespace of Daisi ids: ``uuid5(NAMESPACE, "owner/name".lower())``."""


def daisi_id(owner: str, name: str) -> str:
    """The stable id of the Daisi ``owner/name`` (case-insensitive)."""
    return str(uuid.uuid5(NAMESPACE, f"{owner}/{name}".lower()))


def duplicate_id(full_name: str, path: Path) -> str:
    """The id of a second Daisi called ``full_name``: derived from its folder, so unique."""
    return str(uuid.uuid5(NAMESPACE, f"{full_name.lower()}#{path}"))


@dataclass(frozen=True)
class DaisiSpec:
    """Everything the server knows about one Daisi, found without running it.

    Example:
        >>> spec = load_daisi(Path("examples/daisies/print-hello"))  # doctest: +SKIP
        >>> spec.entry, spec.import_paths  # doctest: +SKIP
        ('app.py', (PosixPath('/.../examples/daisies/print-hello'),))
    """

    id: str
    name: str
    owner: str
    description: str
    path: Path
    """The Daisi's folder (absolute); the worker's working directory."""
    entry: str | None
    """The entry module, relative to ``path`` with ``/`` separators (``"src/app.py"``)."""
    import_paths: tuple[Path, ...]
    """What the worker puts first on ``sys.path``, in this order: the entry module's
    folder (sibling imports) when it is a sub-folder, then the Daisi's folder
    (``from sub_folder.module import x``)."""
    public: bool
    workers: int | None
    timeout: float | None
    memory: int | None
    endpoints: Mapping[str, Endpoint] = field(hash=False)
    requirements: tuple[str, ...]
    """The requirement lines of ``requirements.txt`` (comments and options removed)."""
    missing_requirements: tuple[str, ...]
    """Names of required distributions not installed in the server's environment.

    Informative only: a missing requirement never breaks a Daisi (the module may
    import anyway, e.g. ``sklearn`` listed while ``scikit-learn`` is installed);
    whether the entry module imports decides."""
    error: str | None
    """Why the Daisi cannot be used (it is then listed as broken), else None."""
    min_workers: int | None = None
    """Workers kept running even when idle (``daisi.toml``; None: the server's default)."""
    max_workers: int | None = None
    """The most workers the Daisi's calls start (None: the server's ``--max-workers``)."""
    idle_timeout: float | None = None
    """Seconds an idle worker above ``min_workers`` lives (None: ``--idle-timeout``)."""
    import_timeout: float | None = None
    """Seconds a worker may take to import the module (None: ``--import-timeout``)."""
    env: Mapping[str, str] = field(default_factory=dict, hash=False, repr=False)
    """``[env]`` of ``daisi.toml``: environment variables for the workers (not shown by
    the API)."""

    @property
    def full_name(self) -> str:
        """``owner/name``."""
        return f"{self.owner}/{self.name}"

    @property
    def broken(self) -> bool:
        """True when a load-time problem makes the Daisi unusable."""
        return self.error is not None

    @property
    def entry_file(self) -> Path | None:
        """The entry module's file (absolute), or None when there is none."""
        return None if self.entry is None else self.path / self.entry

    def to_json(self) -> dict[str, Any]:
        """The Daisi object of the protocol (without the run-time ``state`` and ``workers``)."""
        return {
            "id": self.id,
            "name": self.name,
            "owner": self.owner,
            "full_name": self.full_name,
            "description": self.description,
            "public": self.public,
            "endpoints": [ep.to_json() for ep in self.endpoints.values()],
            "broken": self.error,
            "missing_requirements": list(self.missing_requirements),
        }
