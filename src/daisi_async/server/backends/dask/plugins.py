"""The Dask worker plugins that carry the Daisies to the workers.

* :class:`DaisiHostPlugin` (``daisi-host``, idempotent): makes the worker's
  :class:`~.host.DaisiHost`, which then says so on the ``daisi-host`` event topic.
* :class:`DaisiCode` (one per Daisi and runtime, ``daisi-code-<install>``): the Daisi's
  folder as a zip archive, with how to run it; set up on every worker of the cluster,
  present and future, as Dask does for every plugin. Registering a new version replaces
  the old one (Dask tears it down: its pool retires); unregistering removes the Daisi.

Nothing here needs a shared file system: the code travels through the scheduler with the
plugin. The workers need daisi-async installed (``pip install 'daisi-async[cluster]'``,
the same version as the runtime).

Example:
    >>> await client.register_plugin(DaisiHostPlugin())  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from distributed.diagnostics.plugin import WorkerPlugin

from ...console import say
from ...envs import EnvOptions
from .host import DaisiHost, host_of
from .installs import HostPoolSettings
from .packing import LARGE_ARCHIVE, pack
from .protocol import HOST_EXTENSION

if TYPE_CHECKING:
    from distributed import Worker

    from ...registry import DaisiSpec
    from .pool import ClusterPool

__all__ = ["HOST_PLUGIN", "DaisiCode", "DaisiHostPlugin", "code_plugin", "code_plugin_name"]

HOST_PLUGIN = "daisi-host"


def code_plugin_name(install: str) -> str:
    """The plugin name of a Daisi's code (``install``: the runtime's key and the id)."""
    return f"daisi-code-{install}"


class DaisiHostPlugin(WorkerPlugin):
    """Makes the worker's Daisi host (kept across runtimes: registering it again is a
    no-op)."""

    name = HOST_PLUGIN
    idempotent = True

    async def setup(self, worker: Worker) -> None:
        host_of(worker)

    async def teardown(self, worker: Worker) -> None:
        host = worker.extensions.get(HOST_EXTENSION)
        if isinstance(host, DaisiHost):
            await host.close()


class DaisiCode(WorkerPlugin):
    """One Daisi's code and settings, installed on every worker."""

    def __init__(
        self,
        *,
        install: str,
        version: str,
        archive: bytes,
        spec: DaisiSpec,
        settings: HostPoolSettings,
    ) -> None:
        self.install = install
        self.version = version
        self.archive = archive
        self.spec = spec
        self.settings = settings
        self.name = code_plugin_name(install)

    async def setup(self, worker: Worker) -> None:
        await host_of(worker).installs.install(
            self.install, self.version, self.archive, self.spec, self.settings
        )

    async def teardown(self, worker: Worker) -> None:
        host = worker.extensions.get(HOST_EXTENSION)
        if isinstance(host, DaisiHost):
            host.uninstall(self.install, self.version)


def code_plugin(pool: ClusterPool, *, store_dir: Path, envs: EnvOptions) -> DaisiCode:
    """The code plugin of ``pool``: its folder packed (the store left out), how to run it,
    and its version (of both), set on ``pool``. Packs files: run it in a thread."""
    spec, s = pool.spec, pool.settings
    archive, digest = pack(spec.path, skip=[store_dir])
    if len(archive) > LARGE_ARCHIVE:
        say(f"Daisi {s.name}: its folder is {len(archive) >> 20} MiB, sent to every Dask worker")
    settings = HostPoolSettings(
        name=s.name,
        entry=s.entry,
        env_passed=s.env_passed,
        env_extra=dict(s.env_extra),
        memory_limit=s.memory_limit,
        min_workers=s.min_workers,
        idle_timeout=s.idle_timeout,
        import_timeout=s.import_timeout,
        envs=envs,
        sandboxed=s.sandbox is not None,
    )
    pool.version = hashlib.sha256(f"{digest}{settings!r}".encode()).hexdigest()
    return DaisiCode(
        install=pool.key,
        version=pool.version,
        archive=archive,
        spec=dataclasses.replace(spec, endpoints={}),
        settings=settings,
    )
