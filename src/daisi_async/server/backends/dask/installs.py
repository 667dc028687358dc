"""The Daisies installed on one Dask worker (:class:`Installs`): their code, their
environments and their warm worker processes.

A Daisi arrives with its code plugin (:class:`~.plugins.DaisiCode`): its folder is
unpacked under the Dask worker's local directory, its environment is planned (built
with uv on the worker when its ``requirements.txt`` asks for one, on first use), and it
gets a :class:`~daisi_async.server.workers.WorkerPool` of its own: the pool's limits,
log capture and process containment are those of the local runtime. A new code version
replaces the pool (running executions finish on the old one).

When the runtime sandboxes its workers (``--isolation``), the Dask worker does too, with
a :class:`~daisi_async.server.workers.sandbox.Sandbox` of its own: the worker processes
see their Daisi's unpacked folder, their Python and the network, not the other Daisies
or this Dask worker's files. A Dask worker where bubblewrap can't run gives the Daisi no
workers (its start fails with ``daisi.SandboxUnavailable``, saying why) rather than run
it unsandboxed.

Example:
    >>> installs = Installs(root, slots=2, on_log=print, on_output=print)  # doctest: +SKIP
    >>> await installs.install("k-id", "v1", archive, spec, settings)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import shutil
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...envs import Environments, EnvOptions
from ...lifecycle import daisi_interpreter
from ...registry import DaisiSpec
from ...workers.environment import worker_environment
from ...workers.jobs import DaisiImportError
from ...workers.pool import MAX_WORKERS, WorkerPool
from ...workers.sandbox import Sandbox, SandboxUnavailable, choose_isolation
from ...workers.state import DaisiState
from .packing import unpack

__all__ = ["HostPoolSettings", "Installed", "Installs"]

_log = logging.getLogger("daisi_async.cluster")


@dataclass(frozen=True)
class HostPoolSettings:
    """How a Dask worker runs one Daisi (sent with its code)."""

    name: str
    entry: str
    env_passed: tuple[str, ...] = ()
    env_extra: Mapping[str, str] = field(default_factory=dict)
    memory_limit: int | None = None
    min_workers: int = 0
    """Warm worker processes of the Daisi on each Dask worker."""
    idle_timeout: float | None = 600.0
    import_timeout: float | None = 60.0
    envs: EnvOptions = field(default_factory=EnvOptions)
    sandboxed: bool = False
    """Run the worker processes in a sandbox (bubblewrap) made on the Dask worker."""


@dataclass(eq=False)
class Installed:
    """One Daisi on this Dask worker, at one code version."""

    install: str
    version: str
    spec: DaisiSpec
    settings: HostPoolSettings
    pool: WorkerPool
    pinned: int = 0
    """Worker processes pinned here by ``workers.set`` (0: not pinned)."""


class Installs:
    """The Daisies of one Dask worker (see the module docstring)."""

    def __init__(
        self,
        root: Path,
        *,
        slots: int,
        on_log: Callable[[str, str, str], None],
        on_output: Callable[[str, str, str], None],
    ) -> None:
        self.root = root
        self.slots = slots
        self.current: dict[str, Installed] = {}
        """The installed Daisies, by install key."""
        self._on_log = on_log
        self._on_output = on_output
        self._retired: set[tuple[str, str]] = set()
        self._envs: dict[EnvOptions, Environments] = {}
        self._changed = asyncio.Event()
        self._retiring: dict[WorkerPool, asyncio.Task[None]] = {}
        self._sandbox: tuple[Sandbox | None, str] | None = None

    # -- code ----------------------------------------------------------------------------
    async def install(
        self,
        install: str,
        version: str,
        archive: bytes,
        spec: DaisiSpec,
        settings: HostPoolSettings,
    ) -> None:
        """Unpack the Daisi and give it a pool (replacing an older version's)."""
        now = self.current.get(install)
        if now is not None and now.version == version:
            return
        folder = self.root / "code" / f"{install}-{version[:16]}"
        if not folder.exists():
            part = folder.with_name(f"{folder.name}.{uuid.uuid4().hex[:8]}.part")
            await asyncio.to_thread(unpack, archive, part)
            with contextlib.suppress(OSError):  # another worker in this folder won the race
                part.rename(folder)
            shutil.rmtree(part, ignore_errors=True)
        spec = dataclasses.replace(spec, path=folder, import_paths=(folder,))
        envs = self._environments(settings.envs)
        envs.plan([spec])
        item = Installed(install, version, spec, settings, pool=self._pool(spec, settings, install))
        item.pool.start()
        self.current[install] = item
        if now is not None:
            self._retire(now)
        self._changed.set()
        self._changed = asyncio.Event()
        _log.info("Daisi %s installed (%s)", settings.name, version[:12])

    def uninstall(self, install: str, version: str) -> None:
        """Remove the Daisi if ``version`` is the one installed (its running executions
        finish)."""
        now = self.current.get(install)
        if now is not None and now.version == version:
            del self.current[install]
            self._retire(now)

    async def wait(self, install: str, version: str, timeout: float) -> Installed | None:
        """The Daisi at ``version``, once installed; None if that version was replaced.

        Raises:
            asyncio.TimeoutError: it did not arrive within ``timeout`` seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            now = self.current.get(install)
            if now is not None and now.version == version:
                return now
            if (install, version) in self._retired:
                return None
            left = deadline - loop.time()
            if left <= 0:
                raise asyncio.TimeoutError
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    # -- pools ---------------------------------------------------------------------------
    def _environments(self, options: EnvOptions) -> Environments:
        envs = self._envs.get(options)
        if envs is None:
            envs = self._envs[options] = Environments(self.root / "envs", options)
        return envs

    def sandbox(self) -> tuple[Sandbox | None, str]:
        """This Dask worker's sandbox, made on first use, or ``(None, why not)``."""
        if self._sandbox is None:
            try:
                sandbox, _ = choose_isolation("sandbox", root=self.root / "code", store=self.root)
            except SandboxUnavailable as exc:
                self._sandbox = (None, str(exc))
            else:
                if sandbox is not None:
                    sandbox.clear_rooms()  # a previous host's
                self._sandbox = (sandbox, "")
        return self._sandbox

    def _pool(self, spec: DaisiSpec, settings: HostPoolSettings, install: str) -> WorkerPool:
        envs = self._environments(settings.envs)
        high = max(1, min(self.slots, MAX_WORKERS))
        sandbox, why = self.sandbox() if settings.sandboxed else (None, "")

        def output(stream: str, line: str) -> None:
            self._on_output(install, stream, line)

        async def interpreter() -> tuple[str, dict[str, str]]:
            if settings.sandboxed and sandbox is None:
                error = {"type": "daisi.SandboxUnavailable", "message": why, "traceback": ""}
                raise DaisiImportError(error)
            return await daisi_interpreter(envs, spec)

        return WorkerPool(
            name=settings.name,
            directory=spec.path,
            entry=settings.entry,
            env=worker_environment(
                sandbox.environment() if sandbox is not None else None,
                passed=settings.env_passed,
                extra=settings.env_extra or None,
            ),
            sandbox=sandbox,
            memory_limit=settings.memory_limit,
            on_log=self._on_log,
            on_output=output,
            interpreter=interpreter,
            min_workers=min(settings.min_workers, high),
            max_workers=high,
            idle_timeout=settings.idle_timeout,
            import_timeout=settings.import_timeout,
        )

    def size(self, install: str, version: str, number: int) -> None:
        """``workers.set``: keep ``number`` worker processes of the Daisi here (0: go back
        to starting them on demand)."""
        item = self.current.get(install)
        if item is None or item.version != version or number == item.pinned:
            return
        if number > 0:
            item.pool.pin(min(number, MAX_WORKERS))
        elif item.pinned:  # a pinned pool can't be unpinned: a fresh one replaces it
            old = item.pool
            item.pool = self._pool(item.spec, item.settings, install)
            item.pool.start()
            self._retire_pool(old)
        item.pinned = number

    def _retire(self, item: Installed) -> None:
        self._retired.add((item.install, item.version))
        self._retire_pool(item.pool)

    def _retire_pool(self, pool: WorkerPool) -> None:
        task = asyncio.get_running_loop().create_task(pool.retire())
        self._retiring[pool] = task
        task.add_done_callback(lambda _t: self._retiring.pop(pool, None))

    def states(self) -> dict[str, dict[str, Any]]:
        """``{install: {"version", "number", "state", "broken"}}`` of every Daisi here."""
        out: dict[str, dict[str, Any]] = {}
        for install, item in self.current.items():
            envs = self._environments(item.settings.envs)
            state = item.pool.state
            if envs.state(item.spec) in ("queued", "building") and state is not DaisiState.READY:
                state = DaisiState.BUILDING
            broken = item.pool.broken
            out[install] = {
                "version": item.version,
                "number": item.pool.number,
                "state": state.value,
                "broken": broken.error if broken is not None else None,
            }
        return out

    async def close(self) -> None:
        """Stop every worker process (running executions are killed)."""
        pools = [item.pool for item in self.current.values()] + list(self._retiring)
        self.current.clear()
        for task in list(self._retiring.values()):
            task.cancel()
        await asyncio.gather(*(pool.close() for pool in pools), return_exceptions=True)
        for envs in self._envs.values():
            await envs.close()
