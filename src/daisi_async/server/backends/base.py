"""What the engine asks of the place where executions run (:class:`Backend`), and a
Daisi's workers as the engine, the lifecycle and the routes see them
(:class:`DaisiWorkers`).

Two backends exist: :class:`~.local.LocalBackend` (warm worker processes on this
machine, the default) and :class:`~.dask.DaskBackend` (``daisi serve --cluster``: warm
worker processes on the workers of a Dask cluster). The engine knows them only by this
interface:

* :meth:`Backend.make_pool` gives each Daisi its workers (called by
  :meth:`~daisi_async.server.lifecycle.Lifecycle.make_pool`, the one place a pool is
  made), from :class:`PoolSettings`; ``run`` runs one execution, cancelling the task
  that awaits ``run`` stops it, ``pin`` is ``workers.set(n)``;
* a result may stay where it was made (:class:`HeldOutcome`): then the store records
  its size only, and :meth:`Backend.locate`, :meth:`Backend.fetch` and
  :meth:`Backend.release` find it, bring it into the store when a client asks for it,
  and let it go.

Example:
    >>> backend = make_backend(config)       # doctest: +SKIP
    >>> pool = backend.make_pool(spec, settings)  # doctest: +SKIP
    >>> outcome = await pool.run(job, on_start=print)  # doctest: +SKIP
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..workers.jobs import DaisiImportError, Job, Outcome
from ..workers.state import DaisiState

if TYPE_CHECKING:
    from ..registry import DaisiSpec
    from ..workers.sandbox import Sandbox

__all__ = [
    "Backend",
    "DaisiWorkers",
    "HeldOutcome",
    "Interpreter",
    "PoolSettings",
    "ResultUnavailable",
]

Interpreter = Callable[[], Awaitable[tuple[str, Mapping[str, str]]]]
"""Called before a worker starts: ``(python, extra environment)`` of the Daisi."""


class DaisiWorkers(Protocol):
    """A Daisi's workers: a :class:`~daisi_async.server.workers.WorkerPool` on this
    machine, or a :class:`~.dask.pool.ClusterPool` on a Dask cluster."""

    @property
    def number(self) -> int:
        """The pinned count when pinned, else the workers running or starting now."""

    @property
    def status(self) -> str:
        """``"increasing"``, ``"decreasing"`` or ``"ready_to_update"`` (pydaisi's words)."""

    @property
    def state(self) -> DaisiState:
        """What the Daisi's workers are doing (``ready``, ``starting``, ...)."""

    @property
    def broken(self) -> DaisiImportError | None:
        """The failed start that leaves the Daisi without workers, if any."""

    @property
    def pids(self) -> list[int]:
        """Process ids of the workers in service on this machine."""

    @property
    def idle_count(self) -> int:
        """The number of workers waiting for a job on this machine."""

    def start(self) -> None:
        """Start the workers kept warm, in the background."""

    def pin(self, n: int) -> None:
        """``workers.set(n)``: keep exactly ``n`` workers until pinned again."""

    async def run(self, job: Job, *, on_start: Callable[[], None] | None = None) -> Outcome:
        """Run one execution; ``on_start`` when a worker takes it. Cancelling the
        awaiting task stops the run."""

    async def retire(self) -> None:
        """Take no more work (waiting calls get ``PoolRetired``); running ones finish."""

    async def close(self) -> None:
        """Stop every worker now."""


@dataclass(frozen=True)
class PoolSettings:
    """What a Daisi's workers need, as :class:`~daisi_async.server.lifecycle.Lifecycle`
    works it out from ``daisi.toml`` and the ``daisi serve`` options."""

    name: str
    """The Daisi's full name, for messages."""
    directory: Path
    """The Daisi's folder."""
    entry: str
    """The entry module, relative to ``directory``."""
    on_log: Callable[[str, str, str], None]
    """``(execution id, stream, line)`` for each line an execution prints."""
    on_output: Callable[[str, str], None]
    """``(stream, line)`` for each line a worker prints while it imports the Daisi."""
    env_passed: tuple[str, ...] = ()
    """Names of environment variables passed on top of the allowlist (``--env-pass``),
    taken from the environment of the machine the worker runs on."""
    env_extra: Mapping[str, str] = field(default_factory=dict)
    """Variables set for the workers, over the ones above: the Daisi's ``[env]``, then its
    secrets, then ``DAISI_BASE_URL``."""
    memory_limit: int | None = None
    interpreter: Interpreter | None = None
    """The Daisi's interpreter on this machine (None: the server's)."""
    min_workers: int = 0
    max_workers: int = 1
    pinned: bool = False
    """``max_workers`` is a pinned count (``workers`` in daisi.toml)."""
    idle_timeout: float | None = 600.0
    import_timeout: float | None = 60.0
    sandbox: Sandbox | None = None
    """This machine's sandbox (``--isolation``; None: none). A cluster's workers make
    their own from it (see :mod:`.dask.installs`)."""


@dataclass
class HeldOutcome(Outcome):
    """A success whose result bytes stay where they were made (``result_size`` of them)
    until :meth:`Backend.fetch` brings them; ``holder`` says where they are."""

    holder: str = ""


class ResultUnavailable(Exception):
    """A result kept by the backend can't be had; the message says why.

    ``temporary``: it may be had later (the cluster is not connected right now).
    """

    def __init__(self, message: str, *, temporary: bool = False) -> None:
        super().__init__(message)
        self.temporary = temporary


class Backend(ABC):
    """Where executions run (see the module docstring)."""

    builds_environments: bool = True
    """Whether the runtime builds Daisies' environments on this machine (False: the
    backend builds them where the workers run)."""

    description: str = "local worker processes"
    """What the console says executions run on."""

    async def start(self) -> None:  # noqa: B027 - optional
        """Called once, in the event loop, before the Daisies are loaded."""

    async def close(self) -> None:  # noqa: B027 - optional
        """Called once at shutdown, after every pool is closed."""

    @abstractmethod
    def make_pool(self, spec: DaisiSpec, settings: PoolSettings) -> DaisiWorkers:
        """The workers of ``spec`` (not started yet)."""

    async def locate(self, eid: str) -> str | None:
        """Where the result of ``eid`` is kept, when it is not in the store (None: it is
        nowhere)."""
        return None

    async def fetch(self, eid: str) -> bytes:
        """The result bytes of ``eid``, kept by the backend.

        Raises:
            ResultUnavailable: they are gone (their holder is), with why.
        """
        raise ResultUnavailable(f"the result of execution {eid} is not kept anywhere")

    def release(self, eid: str) -> None:  # noqa: B027 - optional
        """The store now has the result of ``eid``: the backend may let it go."""
