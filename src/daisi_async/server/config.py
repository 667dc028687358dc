"""The settings of one runtime (:class:`RuntimeConfig`); the CLI fills them from its options."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .envs import EnvOptions
from .secrets_file import Secrets
from .workers import MAX_WORKERS
from .workers.sandbox import Sandbox

__all__ = ["DEFAULT_MEMORY", "DEFAULT_TIMEOUT", "RuntimeConfig"]

DEFAULT_TIMEOUT = 1800.0
DEFAULT_MEMORY = 8 * 2**30


@dataclass
class RuntimeConfig:
    """Settings of one runtime; the CLI fills them from its options."""

    root: Path
    store_dir: Path
    tokens: Mapping[str, str] = field(default_factory=dict)
    workers: int = 0
    """Workers each Daisi keeps running from startup, even idle (``--workers``; a Daisi's
    ``min_workers`` in daisi.toml wins); the others start on demand."""
    timeout: float = DEFAULT_TIMEOUT
    memory_limit: int | None = DEFAULT_MEMORY
    max_body_bytes: int = 1 << 30
    legacy_only: bool = False
    sync: str = "NORMAL"
    """SQLite's ``synchronous``: NORMAL survives a crash of the runtime process, FULL also
    a crash of the machine (one fsync per commit)."""
    base_url: str = ""
    default_owner: str = "local"
    max_workers: int = field(default_factory=lambda: min(os.cpu_count() or 1, MAX_WORKERS))
    """The most workers a Daisi's pool may have (``--max-workers``); a Daisi's
    ``max_workers`` in daisi.toml defaults to it and is clamped to it."""
    idle_timeout: float = 600.0
    """Seconds an idle worker lives above a Daisi's ``min_workers`` (``--idle-timeout``)."""
    import_timeout: float = 60.0
    """Seconds a worker may take to import its Daisi (``--import-timeout``)."""
    reload: bool = False
    """Watch the served folder and reload edited, new and removed Daisies (``--reload``)."""
    env_pass: tuple[str, ...] = ()
    """Names of server environment variables that workers get on top of the allowlist
    of :mod:`daisi_async.server.workers.environment` (``daisi serve --env-pass NAME``)."""
    envs: EnvOptions = field(default_factory=EnvOptions)
    """How Daisies' environments are built (see :mod:`daisi_async.server.envs`)."""
    sandbox: Sandbox | None = None
    """The sandbox workers run in (``--isolation``; None: none, see
    :mod:`daisi_async.server.workers.sandbox`)."""
    secrets: Secrets = field(default_factory=Secrets)
    """Each Daisi's secrets (``--secrets FILE``; see :mod:`daisi_async.server.secrets_file`)."""
    cluster: str | None = None
    """Run executions on a Dask cluster (``daisi serve --cluster``): a scheduler address
    (``tcp://host:8786``) or ``local:N`` (see :mod:`daisi_async.server.backends.dask`);
    None: on this machine."""
