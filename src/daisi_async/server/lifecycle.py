"""The served Daisies over the server's life (:class:`Lifecycle`): the registry, one
worker pool per Daisi, each Daisi's state and start log, and ``--reload``.

* At startup the served folder is read (no Daisi code runs) and each Daisi that loaded
  gets a pool (:meth:`Lifecycle.make_pool`, the one place a pool is made). Pools start
  their ``min_workers`` in the background and the rest on demand
  (:mod:`daisi_async.server.workers.pool`): the server is ready at once, whatever the
  Daisies do at import.
* A Daisi with a ``requirements.txt`` runs in an environment of its own
  (:mod:`daisi_async.server.envs`): its workers wait for the build (the Daisi's state is
  ``building``), and a failed build breaks only that Daisi, with the installer's words.
* What a worker prints while it imports its Daisi goes to the Daisi's start log
  (:class:`~daisi_async.server.workers.startlog.StartLog`): kept in memory, echoed on
  the console as ``[Name] line``.
* With ``--reload`` the served folder's source files are compared every
  ``POLL_INTERVAL`` seconds (:mod:`daisi_async.server.watch`). On a change the folder
  is read again: a Daisi whose files changed gets a new pool (new calls go to new
  workers; running calls finish on the old ones, which then exit), a new Daisi gets
  a pool, and a removed one loses its pool (its waiting calls fail).

Example:
    >>> lifecycle = Lifecycle(config, on_log=print)  # doctest: +SKIP
    >>> lifecycle.load()  # in the event loop  # doctest: +SKIP
    >>> await lifecycle.run(daisi_id, job)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from .backends import Backend, DaisiWorkers, LocalBackend, PoolSettings
from .console import say
from .envs import ENVIRONMENT_ERROR, EnvironmentBroken, Environments
from .registry import DaisiSpec, Registry, load_daisies
from .watch import POLL_INTERVAL, Snapshot, fingerprint, snapshot
from .workers.jobs import DaisiImportError, Job, Outcome, error_text
from .workers.pool import PoolRetired
from .workers.startlog import StartLog
from .workers.state import DaisiState

if TYPE_CHECKING:
    from .engine import RuntimeConfig

__all__ = ["DaisiUnavailable", "Lifecycle", "daisi_interpreter"]

log = logging.getLogger("daisi_async.server")


class DaisiUnavailable(Exception):
    """The Daisi has no worker pool: it was removed from the folder, or broke on reload."""


async def daisi_interpreter(envs: Environments, spec: DaisiSpec) -> tuple[str, dict[str, str]]:
    """The Daisi's interpreter (once its environment is built) and what to add to its
    workers' environment: an own environment comes first on ``PATH``, as if activated.

    Raises:
        DaisiImportError: the environment can't be had (type ``daisi.EnvironmentError``).
    """
    try:
        python = await envs.interpreter(spec)
    except EnvironmentBroken as exc:
        error = {"type": ENVIRONMENT_ERROR, "message": str(exc), "traceback": ""}
        raise DaisiImportError(error) from None
    if not envs.own(spec):
        return python, {}
    bin_dir = os.path.dirname(python)
    path = os.pathsep.join(filter(None, [bin_dir, os.environ.get("PATH")]))
    return python, {"PATH": path, "VIRTUAL_ENV": os.path.dirname(bin_dir)}


class Lifecycle:
    """The served Daisies and their workers (see the module docstring)."""

    def __init__(
        self,
        config: RuntimeConfig,
        *,
        envs: Environments,
        on_log: Callable[[str, str, str], None],
        backend: Backend | None = None,
    ) -> None:
        self.config = config
        self.envs = envs
        self.backend = backend or LocalBackend()
        """Where the pools run (:mod:`daisi_async.server.backends`)."""
        self.registry = Registry([])
        self.pools: dict[str, DaisiWorkers] = {}
        """The pool of each Daisi that loaded, by id."""
        self._on_log = on_log
        self._logs: dict[str, StartLog] = {}
        self._old: dict[DaisiWorkers, asyncio.Task[None]] = {}  # replaced pools, retiring
        self._snapshot: Snapshot = {}
        self._watcher: asyncio.Task[None] | None = None

    # -- startup and shutdown ------------------------------------------------------------
    def load(self) -> None:
        """Read the served folder and give each Daisi a pool; with ``reload``, watch the
        folder. Call from the event loop; no Daisi code runs here."""
        if self.config.reload:
            self._snapshot = self._snap()
        specs = load_daisies(self.config.root, default_owner=self.config.default_owner)
        self.registry = Registry(specs)
        self._plan_envs(specs)
        if self.config.sandbox is not None:
            self.config.sandbox.clear_rooms()  # a previous server's (the store is ours now)
        for warning in self.config.secrets.problems(specs):
            log.warning("%s", warning)
        for spec in specs:
            self._add(spec)
        if self.config.reload:
            self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def close(self) -> None:
        """Stop watching and stop every worker."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        await self.envs.close()
        for task in self._old.values():
            task.cancel()
        pools = [*self.pools.values(), *self._old]
        await asyncio.gather(*(p.close() for p in pools))

    # -- pools ---------------------------------------------------------------------------
    def make_pool(self, spec: DaisiSpec) -> DaisiWorkers:
        """The worker pool of ``spec``: its environment (with its ``[env]`` and secrets),
        sandbox, limits and worker counts, made by the backend
        (:meth:`~.backends.Backend.make_pool`).

        The one place a pool is made (startup, ``--reload``).
        """
        extra = {"DAISI_BASE_URL": self.config.base_url} if self.config.base_url else {}
        secrets = self.config.secrets.for_daisi(spec, self.registry.all())
        variables = {**spec.env, **secrets, **extra}  # precedence: see workers.environment
        low, high, pinned = self._counts(spec)
        settings = PoolSettings(
            name=spec.full_name,
            directory=spec.path,
            entry=spec.entry or "app.py",
            env_passed=self.config.env_pass,
            env_extra=variables,
            memory_limit=spec.memory or self.config.memory_limit,
            on_log=self._on_log,
            on_output=self.start_log(spec).add,
            interpreter=lambda: self._interpreter(spec),
            min_workers=low,
            max_workers=high,
            pinned=pinned,
            idle_timeout=spec.idle_timeout or self.config.idle_timeout,
            import_timeout=spec.import_timeout or self.config.import_timeout,
            sandbox=self.config.sandbox,
        )
        return self.backend.make_pool(spec, settings)

    def _plan_envs(self, specs: list[DaisiSpec]) -> None:
        """Decide the Daisies' environments, when this machine builds them."""
        if self.backend.builds_environments:
            self.envs.plan(s for s in specs if s.error is None)

    async def _interpreter(self, spec: DaisiSpec) -> tuple[str, dict[str, str]]:
        return await daisi_interpreter(self.envs, spec)

    def _counts(self, spec: DaisiSpec) -> tuple[int, int, bool]:
        """``(min_workers, max_workers, pinned)`` of ``spec``, within ``--max-workers``."""
        cap = self.config.max_workers
        if spec.workers is not None:  # daisi.toml ``workers``: a pinned count
            if spec.workers > cap:
                log.warning(
                    "Daisi %s asks for %d workers; starting %d (this server's --max-workers)",
                    spec.full_name, spec.workers, cap,
                )  # fmt: skip
            n = min(spec.workers, cap)
            return n, n, True
        high = spec.max_workers or cap
        if high > cap:
            log.warning(
                "Daisi %s asks for up to %d workers; at most %d run (this server's --max-workers)",
                spec.full_name, high, cap,
            )  # fmt: skip
            high = cap
        low = self.config.workers if spec.min_workers is None else spec.min_workers
        return min(low, high), high, False

    def _add(self, spec: DaisiSpec) -> None:
        if spec.error is None:
            pool = self.make_pool(spec)
            self.pools[spec.id] = pool
            pool.start()

    def _drop(self, daisi_id: str) -> None:
        """Retire the Daisi's pool: waiting calls move on, running ones finish."""
        pool = self.pools.pop(daisi_id, None)
        if pool is not None:
            task = asyncio.get_running_loop().create_task(pool.retire())
            self._old[pool] = task
            task.add_done_callback(lambda _t: self._old.pop(pool, None))

    async def run(self, daisi_id: str, job: Job, *, on_start: Callable[[], None]) -> Outcome:
        """Run ``job`` on the Daisi's current pool (a pool replaced meanwhile hands it on).

        Raises:
            DaisiImportError: no worker could import the Daisi.
            DaisiUnavailable: the Daisi has no pool (any more).
        """
        while True:
            pool = self.pools.get(daisi_id)
            if pool is None:
                raise DaisiUnavailable(daisi_id)
            with contextlib.suppress(PoolRetired):
                return await pool.run(job, on_start=on_start)

    # -- what the API shows --------------------------------------------------------------
    def state(self, spec: DaisiSpec) -> tuple[DaisiState, str | None]:
        """The Daisi's state, and why it is broken (None unless it is)."""
        if spec.error is not None:
            return DaisiState.BROKEN, spec.error
        if self.envs.state(spec) in ("queued", "building"):
            return DaisiState.BUILDING, None
        pool = self.pools.get(spec.id)
        if pool is None:
            return DaisiState.BROKEN, "the Daisi is not served"
        failure = pool.broken
        return pool.state, None if failure is None else error_text(failure.error)

    def start_log(self, spec: DaisiSpec) -> StartLog:
        """The start log of ``spec`` (what its workers printed while importing it)."""
        found = self._logs.get(spec.id)
        if found is None:
            found = self._logs[spec.id] = StartLog(spec.name)
        return found

    # -- --reload ------------------------------------------------------------------------
    def _snap(self) -> Snapshot:
        return snapshot(self.config.root, skip=[self.config.store_dir])

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL)
            try:
                snap = await asyncio.to_thread(self._snap)
                if snap != self._snapshot:
                    self.reload(snap)
            except Exception:  # e.g. the folder is gone: keep serving what we have
                log.exception("--reload: could not read %s again", self.config.root)

    def reload(self, snap: Snapshot) -> None:
        """Read the served folder again (its files are now ``snap``): new pools for the
        Daisies whose files changed and for new ones; removed ones lose theirs."""
        root, before, old = self.config.root, self._snapshot, self.registry
        specs = load_daisies(root, default_owner=self.config.default_owner)
        self._snapshot, self.registry = snap, Registry(specs)
        self._plan_envs(specs)
        for spec in old.all():
            if self.registry.get(spec.id) is None:
                self._drop(spec.id)
                self._logs.pop(spec.id, None)
                say(f"Daisi {spec.full_name} removed")
        for spec in specs:
            previous = old.get(spec.id)
            if (
                previous is not None
                and previous.path == spec.path
                and previous.error == spec.error
                and fingerprint(before, root, spec.path) == fingerprint(snap, root, spec.path)
            ):
                continue
            self._drop(spec.id)
            self._add(spec)
            say(f"Daisi {spec.full_name} {'reloaded' if previous else 'added'}")
