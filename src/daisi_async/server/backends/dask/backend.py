"""Executions on a Dask cluster: the runtime's side (:class:`DaskBackend`).

* **Connection.** A Dask ``Client`` (asynchronous, on the runtime's event loop) connects
  to the scheduler (``--cluster tcp://…``), or to a ``LocalCluster`` the runtime starts
  (``--cluster local:N``), in the background: the runtime serves at once, executions
  wait QUEUED meanwhile. The scheduler tells which workers exist (asked every 2 s; a new
  worker's host also says so on the ``daisi-host`` event topic); the runtime opens one
  stream to each worker's Daisi host (:mod:`.links`), and a worker whose stream breaks or
  that the scheduler no longer lists is dropped. When the scheduler is lost, the executions
  running end FAILED (``daisi.ClusterUnavailable``), the others wait, and the runtime
  connects again as soon as the scheduler answers; what it stored is served meanwhile.
* **Code.** Each Daisi's folder goes to every worker, present and future, in a worker
  plugin (:mod:`.plugins`), again after a reconnect; an edited Daisi (``--reload``)
  replaces its plugin.
* **Results.** A result up to the inline limit comes back with its execution and is
  stored at once. A larger one stays on the worker that made it: an execution that
  takes it as an argument reads it there or has it sent from worker to worker, never
  through the runtime; a client asking for it has it fetched into the store then
  (:meth:`fetch`). See :mod:`daisi_async.server.backends.dask` for what that means for
  durability.

Example:
    >>> backend = DaskBackend(RuntimeConfig(..., cluster="tcp://10.0.0.5:8786"))  # doctest: +SKIP
    >>> await backend.start()  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import time
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from distributed import Client

import daisi_async

from ...._dispatch import Signal
from ...._wire import DAISI_BROKEN
from ...console import say
from ...registry import DaisiSpec
from ...workers.jobs import DaisiImportError, error
from ..base import Backend, PoolSettings, ResultUnavailable
from .address import parse_cluster
from .kept import KeptResults
from .links import HostLink, HostLost, NoHostYet
from .placement import ClusterUnavailable, Placement
from .plugins import DaisiHostPlugin, code_plugin, code_plugin_name
from .pool import ClusterPool
from .protocol import HOST_TOPIC
from .settings import (
    CONNECT_TIMEOUT,
    FETCH_WAIT,
    SYNC_INTERVAL,
    cluster_wait,
    runtime_key,
)

if TYPE_CHECKING:
    from distributed import LocalCluster

    from ...engine import RuntimeConfig

__all__ = ["DaskBackend"]

_log = logging.getLogger("daisi_async.server")


def _dashboard() -> str | None:
    """Where the local cluster's dashboard listens (a free port), if bokeh is installed."""
    return ":0" if importlib.util.find_spec("bokeh") is not None else None


async def _closed(closable: Client | LocalCluster) -> None:
    done = closable.close()
    if done is not None:
        await done


class DaskBackend(Backend):
    """Executions on the workers of a Dask cluster (see the module docstring)."""

    builds_environments = False

    def __init__(self, config: RuntimeConfig) -> None:
        self.config = config
        self.cluster = parse_cluster(config.cluster or "")
        self.description = f"the Dask cluster at {self.cluster}"
        self.key = runtime_key(config.store_dir)
        self.placement = Placement()
        self.kept_results = KeptResults()
        self.pools: dict[str, ClusterPool] = {}
        """The current pool of each Daisi, by install key."""
        self.client: Client | None = None
        self.epoch = 0
        """Counts the connections to the scheduler."""
        self.scheduler = ""
        self.lost_why = ""
        self.bytes_fetched = 0
        """Result bytes fetched from the cluster into the store so far."""
        self._connected = False
        self._synced = -1
        self._local: LocalCluster | None = None
        self._changed = Signal()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._opening: dict[str, asyncio.Task[None]] = {}
        self._refused: set[str] = set()
        self._again: set[str] = set()
        self._install_lock = asyncio.Lock()
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        """Whether the scheduler is connected now."""
        return self._connected and self.client is not None and self.client.status == "running"

    # -- start and stop --------------------------------------------------------------------
    async def start(self) -> None:
        """Connect in the background (executions wait QUEUED meanwhile)."""
        say(f"executions run on {self.description}")
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise())
        self._spawn(self._expire())

    async def close(self) -> None:
        """Remove this runtime's Daisies from the workers, close the links and the client
        (and the local cluster)."""
        client = self.client
        if client is not None and self.connected:
            client.unsubscribe_topic(HOST_TOPIC)
            names = [code_plugin_name(key) for key in self.pools]
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    asyncio.gather(*(client.unregister_worker_plugin(n) for n in names)), 5.0
                )
        for task in [self._supervisor, *self._tasks]:
            if task is not None:
                task.cancel()
        for task in [self._supervisor, *self._tasks]:
            if task is not None:
                with contextlib.suppress(BaseException):
                    await task
        if self._local is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(_closed(self._local), 15.0)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the connection ----------------------------------------------------------------------
    async def _scheduler_address(self) -> str:
        if self.cluster.scheduler is not None:
            return self.cluster.scheduler
        if self._local is None:
            from distributed import LocalCluster

            self._local = await LocalCluster(
                n_workers=self.cluster.local_workers,
                threads_per_worker=1,
                processes=True,
                asynchronous=True,
                dashboard_address=_dashboard(),
                silence_logs=logging.WARNING,
            )
        return str(self._local.scheduler_address)

    async def _supervise(self) -> None:
        delay, complained = 0.5, False
        while True:
            try:
                address = await self._scheduler_address()
                client = await Client(
                    address,
                    asynchronous=True,
                    set_as_default=False,
                    timeout=CONNECT_TIMEOUT,
                    name="daisi-runtime",
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not complained:
                    say(f"can't reach the Dask scheduler at {self.cluster} ({exc}); trying again")
                    complained = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay, complained = 0.5, False
            self.client = client
            why = f"lost the connection to the Dask scheduler at {address}"
            try:
                await self._serve(client, address)
            except asyncio.CancelledError:
                why = "the runtime is stopping"
                raise
            except Exception as exc:
                _log.exception("the Dask cluster connection failed")
                why = f"the connection to the Dask scheduler at {address} failed: {exc!r}"
            finally:
                self._disconnected(why)
                self.client = None
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(_closed(client), 5.0)
            say(f"{why}; connecting again")

    async def _serve(self, client: Client, address: str) -> None:
        """One connection to the scheduler, until it is lost."""
        self.epoch += 1
        epoch = self.epoch
        self.scheduler = address
        try:
            await client.register_plugin(DaisiHostPlugin())
        except Exception as exc:  # a worker without daisi-async: it gets no executions
            say(f"a Dask worker could not start the Daisi host: {exc!r}")
        client.subscribe_topic(HOST_TOPIC, self._on_host_event)
        self._connected = True
        for pool in list(self.pools.values()):
            self.install(pool)
        workers = await self._sync(client)
        self._synced = epoch
        self._changed.fire()
        dashboard = getattr(client, "dashboard_link", None) if _dashboard() else None
        where = f"; dashboard {dashboard}" if dashboard else ""
        say(f"connected to the Dask scheduler at {address}: {len(workers)} workers{where}")
        last = time.monotonic()
        while client.status == "running":
            await asyncio.sleep(0.1)
            if time.monotonic() - last >= SYNC_INTERVAL:
                last = time.monotonic()
                with contextlib.suppress(OSError, asyncio.TimeoutError):
                    await self._sync(client)

    async def _sync(self, client: Client) -> list[str]:
        """Link the workers the scheduler lists; drop links to workers it no longer lists."""
        assert client.scheduler is not None
        identity = await asyncio.wait_for(client.scheduler.identity(n_workers=-1), 10.0)
        workers = list(identity.get("workers", {}))
        for address in workers:
            self._link(address)
        for address, link in list(self.placement.links.items()):
            if address not in workers:
                link.close("the scheduler no longer lists it")
        opening = list(self._opening.values())
        if opening:
            await asyncio.wait(opening, timeout=15.0)
        return workers

    def _link(self, address: str) -> None:
        if address in self.placement.links or not self.connected:
            return
        if address in self._opening:  # try again once this attempt is over
            self._again.add(address)
            return
        task = asyncio.get_running_loop().create_task(self._open(address, self.epoch))
        self._opening[address] = task

        def opened(_task: asyncio.Task[None]) -> None:
            self._opening.pop(address, None)
            if address in self._again:
                self._again.discard(address)
                self._link(address)

        task.add_done_callback(opened)

    async def _open(self, address: str, epoch: int) -> None:
        assert self.client is not None
        try:
            link = await HostLink.open(
                address,
                runtime=self.key,
                connection_args=self.client.security.get_connection_args("client"),
                on_message=self._on_message,
                on_closed=self._on_closed,
            )
        except asyncio.CancelledError:
            raise
        except NoHostYet:  # its host will say when it is ready (or the next sync retries)
            return
        except Exception as exc:  # refused, unreachable, or a malformed hello
            if address not in self._refused:
                self._refused.add(address)
                say(f"no executions go to the Dask worker {address}: {exc}")
            return
        if epoch != self.epoch or not self.connected:
            link.close("the connection to the scheduler it came from is gone")
            return
        if address in self._refused:
            self._refused.discard(address)
        if link.version != daisi_async.__version__:
            say(
                f"the Dask worker {address} runs daisi-async {link.version}, this runtime"
                f" {daisi_async.__version__}"
            )
        for eid, size in link.held.items():
            self.kept_results.add(eid, address, size)
        self.placement.add(link)
        for pool in list(self.pools.values()):
            self.share(pool)
        self._changed.fire()

    def _on_host_event(self, event: tuple[float, Mapping[str, Any]]) -> None:
        address = event[1].get("address")
        if isinstance(address, str):
            self._link(address)

    def _on_message(self, link: HostLink, msg: dict[str, Any]) -> None:
        if msg.get("op") == "output":
            pool = self.pools.get(str(msg.get("install")))
            if pool is not None:
                pool.settings.on_output(str(msg.get("stream")), str(msg.get("line")))
        elif msg.get("op") == "pools":
            self._changed.fire()

    def _on_closed(self, link: HostLink) -> None:
        self.placement.remove(link)
        self.kept_results.worker_lost(link.address, link.why)
        for pool in list(self.pools.values()):
            self.share(pool)
        self._changed.fire()

    def _disconnected(self, why: str) -> None:
        self._connected = False
        self._synced = -1
        self.lost_why = why
        self.placement.fail_resumed(
            ClusterUnavailable(f"{why} while the execution waited to run again")
        )
        for task in list(self._opening.values()):
            task.cancel()
        for link in list(self.placement.links.values()):
            link.close(why)
        self._changed.fire()

    async def _expire(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self.placement.expire(cluster_wait(), self._why_no_worker)

    def _why_no_worker(self) -> str:
        if not self.connected:
            state = self.lost_why or "connecting"
            return f"the Dask scheduler at {self.cluster} is not connected ({state})"
        return f"the scheduler at {self.scheduler} has no worker with a Daisi host"

    def scheduler_lost(self, exc: HostLost) -> str:
        """The message of an execution that ran when the scheduler was lost."""
        why = self.lost_why or "lost the Dask scheduler"
        return f"{why} while this execution ran on {exc.address}"

    # -- pools -------------------------------------------------------------------------------
    def make_pool(self, spec: DaisiSpec, settings: PoolSettings) -> ClusterPool:
        """The Daisi's workers on the cluster (its code is installed by ``start``)."""
        return ClusterPool(self, spec, settings)

    def install(self, pool: ClusterPool) -> None:
        """Make ``pool`` the Daisi's current one and install its code on the workers (in
        the background, when connected)."""
        self.pools[pool.key] = pool
        if self.connected:
            self._spawn(self._install(pool, self.epoch))

    async def _install(self, pool: ClusterPool, epoch: int) -> None:
        async with self._install_lock:
            client = self.client
            if epoch != self.epoch or self.pools.get(pool.key) is not pool or client is None:
                return
            try:
                plugin = await asyncio.to_thread(
                    code_plugin, pool, store_dir=self.config.store_dir, envs=self.config.envs
                )
                await client.register_plugin(plugin, name=code_plugin_name(pool.key))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if epoch == self.epoch and self.connected:
                    pool.failure = DaisiImportError(
                        error(
                            DAISI_BROKEN,
                            f"its code could not be installed on the Dask workers: {exc!r}",
                        )
                    )
            else:
                if epoch == self.epoch:
                    pool.failure = None
                    pool.registered = epoch
                    self.share(pool)
            self._changed.fire()

    def retired(self, pool: ClusterPool) -> None:
        """``pool`` retired: if no newer pool replaced it, its Daisi leaves the workers."""
        if self.pools.get(pool.key) is pool:
            del self.pools[pool.key]
            client = self.client
            if client is not None and self.connected:
                self._spawn(client.unregister_worker_plugin(code_plugin_name(pool.key)))

    def share(self, pool: ClusterPool) -> None:
        """Tell each worker how many processes of a pinned pool it keeps."""
        shares = pool.shares
        if shares is None or pool.registered != self.epoch:
            return
        for address, link in list(self.placement.links.items()):
            link.send(
                {"op": "size", "install": pool.key, "version": pool.version,
                 "number": shares.get(address, 0)}
            )  # fmt: skip
        self.placement.dispatch()

    def is_ready(self, pool: ClusterPool) -> bool:
        """Whether ``pool`` can take executions now (:meth:`ready` would not wait)."""
        return pool.registered == self.epoch and pool.failure is None and self.connected

    async def ready(self, pool: ClusterPool) -> None:
        """Wait until the scheduler is connected and the Daisi's code is installed.

        Raises:
            ClusterUnavailable: not within :func:`.settings.cluster_wait` seconds.
            DaisiImportError: the code could not be installed.
            PoolRetired: the pool was retired meanwhile.
        """
        since, wait = time.monotonic(), cluster_wait()
        while True:
            pool.check_usable()
            if pool.failure is not None:
                raise pool.failure
            if self.connected and pool.registered == self.epoch:
                return
            left = wait - (time.monotonic() - since)
            if left <= 0:
                raise ClusterUnavailable(
                    f"the Daisi could not be installed on the Dask cluster within"
                    f" {wait:g} s: {self._why_no_worker()}"
                )
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 1.0))

    # -- kept results ------------------------------------------------------------------------
    def kept(self, eid: str, address: str, size: int) -> None:
        """The worker at ``address`` keeps the result of ``eid``."""
        self.kept_results.add(eid, address, size)

    async def _where(self, eid: str, wait: float) -> str:
        since = time.monotonic()
        while True:
            found = self.kept_results.where(eid)
            if found is not None:
                return found
            if self.connected and self._synced == self.epoch:
                raise ResultUnavailable(self.kept_results.why_gone(eid))
            left = wait - (time.monotonic() - since)
            if left <= 0:
                raise ResultUnavailable(self._why_no_worker(), temporary=True)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 1.0))

    async def locate(self, eid: str) -> str:
        """The worker that keeps the result of ``eid`` (waits for the cluster, if need be)."""
        return await self._where(eid, cluster_wait())

    async def fetch(self, eid: str) -> bytes:
        """The kept result of ``eid``, from the worker that keeps it."""
        address = await self._where(eid, FETCH_WAIT)
        client = self.client
        if client is None:
            raise ResultUnavailable(self._why_no_worker(), temporary=True)
        try:
            reply = await client.rpc(address).daisi_fetch(eid=eid)
        except Exception as exc:
            raise ResultUnavailable(
                f"the Dask worker {address} that keeps it could not be reached ({exc!r})",
                temporary=True,
            ) from None
        if not isinstance(reply, dict) or reply.get("status") != "OK":
            self.kept_results.remove(eid)
            raise ResultUnavailable(f"the Dask worker {address} no longer keeps it")
        data = bytes(reply["data"])
        self.bytes_fetched += len(data)
        return data

    def release(self, eid: str) -> None:
        """The store has the result of ``eid`` now: its worker may delete its copy."""
        address = self.kept_results.remove(eid)
        link = self.placement.links.get(address) if address else None
        if link is not None:
            link.send({"op": "drop", "eids": [eid]})
