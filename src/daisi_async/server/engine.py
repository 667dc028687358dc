"""The execution engine: validates submissions, runs them on worker pools, waits.

It ties the served Daisies and their worker pools (:mod:`.lifecycle`: which Daisies
exist), the backend (:mod:`.backends`: where code runs, on this machine or on a Dask
cluster) and the store (what happened) together. HTTP lives in the route modules; this
module knows nothing of requests and replies beyond :class:`~.errors.ApiError`. The
settings are :class:`~.config.RuntimeConfig`; waiting for executions to end is
:class:`~.waits.Waits`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._wire import CANCELLED, DAISI_BROKEN, RESULT_ERROR, UPSTREAM_FAILED, ExecutionStatus
from .auth import Auth
from .backends import HeldOutcome, ResultUnavailable, make_backend
from .config import DEFAULT_MEMORY, DEFAULT_TIMEOUT, RuntimeConfig
from .envs import ENVIRONMENT_ERROR, Environments
from .errors import ApiError, invalid_arguments, not_found
from .lifecycle import DaisiUnavailable, Lifecycle
from .registry import ArgumentsError, DaisiSpec, Registry
from .store import (
    INLINE_BLOB_BYTES,
    RESULT_PREFIX,
    Blob,
    ExecutionRecord,
    IdempotencyMismatch,
    StorageError,
    Store,
    valid_key,
)
from .waits import Waits
from .workers import DaisiImportError, Job, Outcome
from .workers.jobs import error_text

__all__ = [
    "DEFAULT_MEMORY",
    "DEFAULT_TIMEOUT",
    "INLINE_RESULT_BYTES",
    "Runtime",
    "RuntimeConfig",
]

log = logging.getLogger("daisi_async.server")

INLINE_RESULT_BYTES = 64 * 1024
GROUP_WINDOW = 0.005
"""Seconds the store gathers changes before a commit while :data:`BUSY` executions or
more are in flight (a fan-out): fewer, larger commits, and most quick runs' start and end
in one change. With fewer in flight it commits at once (the turn after next), so a lone
call waits for no window. (5 ms against 2 ms, alternating runs of the 10,000-call gather
benchmark: +6% calls per second, -8% of the server's CPU.)"""
BUSY = 16


class Runtime(Waits):
    """Everything the routes need: Daisies, executions, pools, auth."""

    def __init__(self, config: RuntimeConfig, *, store: Store | None = None) -> None:
        self.config = config
        self.auth = Auth(config.tokens)
        self.store = store or Store(config.store_dir, synchronous=config.sync)
        self.store.on_lost = self._lost
        self.envs = Environments(config.store_dir / "envs", config.envs)
        self.backend = make_backend(config)
        self.lifecycle = Lifecycle(
            config, envs=self.envs, on_log=self._on_log, backend=self.backend
        )
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._fetches: dict[str, asyncio.Task[None]] = {}
        self.store.group_commits(self._commit_window)

    @property
    def isolation(self) -> str:
        """The isolation of Daisi code in force: ``sandbox (<bubblewrap version>)`` or ``none``."""
        sandbox = self.config.sandbox
        return f"sandbox ({sandbox.version})" if sandbox is not None else "none"

    @property
    def registry(self) -> Registry:
        """The Daisies served now."""
        return self.lifecycle.registry

    def _commit_window(self) -> float:
        return GROUP_WINDOW if len(self._tasks) >= BUSY else 0.0

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        """Open the store, load the Daisies (their workers start in the background or on
        first use), resume queued work."""
        self.store.open()
        await self.backend.start()
        self.lifecycle.load()
        for rec in self.store.recover():
            self._schedule(rec)

    async def stop(self) -> None:
        """Stop running work (it stays RUNNING in the store: a restart marks it)."""
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(BaseException):
                await t
        await self.lifecycle.close()
        await self.backend.close()
        self.store.close()

    # -- Daisies -------------------------------------------------------------------------
    def daisi_error(self, spec: DaisiSpec) -> str | None:
        """Why a Daisi can't run (load error, or the last import failed), or None."""
        return self.lifecycle.state(spec)[1]

    def visible(self, spec: DaisiSpec | None, user: str | None) -> DaisiSpec:
        """The Daisi if ``user`` may see it; else the 404 a missing one gets."""
        if spec is None or not self.auth.can_see_daisi(user, owner=spec.owner, public=spec.public):
            raise not_found("no such Daisi")
        return spec

    def find_daisi(self, name_or_id: str, user: str | None) -> DaisiSpec:
        """Resolve a name, ``owner/name`` or id, as ``user`` sees it."""
        try:
            return self.visible(self.registry.find(name_or_id), user)
        except ApiError:
            raise not_found(f"no Daisi named {name_or_id!r}") from None

    def unavailable(self, spec: DaisiSpec) -> ApiError:
        """The 409 for a request that needs the Daisi's workers while it has none."""
        return ApiError(
            409, "daisi_broken", f"Daisi {spec.full_name!r} can't run: {self.daisi_error(spec)}"
        )

    def daisi_json(self, spec: DaisiSpec) -> dict[str, Any]:
        """The Daisi object of the protocol."""
        body = spec.to_json()
        state, body["broken"] = self.lifecycle.state(spec)
        body["state"] = state.value
        if self.envs.own(spec):  # installed in its own environment (or its build failed)
            body["missing_requirements"] = []
        pool = self.lifecycle.pools.get(spec.id)
        body["workers"] = pool.number if pool else 0
        return body

    # -- executions ----------------------------------------------------------------------
    def execution(self, eid: str, user: str | None) -> ExecutionRecord:
        """The execution if ``user`` may see it; else 404."""
        rec = self.store.get(eid) if valid_key(eid) else None
        if rec is None or not self.auth.can_see_execution(user, rec.owner):
            raise not_found(f"no execution with id {eid!r}")
        return rec

    def blob(self, key: str, user: str | None) -> Blob | None:
        """The blob if ``user`` may read it (same rule as executions), else None."""
        blob = self.store.get_blob(key)
        if blob is None or not self.auth.can_see_execution(user, blob.owner):
            return None
        return blob

    def check_submission(
        self,
        spec: DaisiSpec,
        endpoint: str,
        args: Mapping[str, Mapping[str, Any]],
        user: str | None,
    ) -> dict[str, dict[str, Any]]:
        """Validate one submission completely, before anything is created."""
        ep = spec.endpoints.get(endpoint)
        if ep is None:
            broken = self.daisi_error(spec)
            if broken:  # e.g. a SyntaxError: no endpoints were found; say why
                raise ApiError(409, "daisi_broken", f"Daisi {spec.full_name!r} can't run: {broken}")
            raise not_found(f"Daisi {spec.full_name!r} has no endpoint {endpoint!r}")
        try:
            ep.check_arguments(args.keys())
        except ArgumentsError as exc:
            raise invalid_arguments(str(exc), param=exc.param) from None
        checked: dict[str, dict[str, Any]] = {}
        for name, arg in args.items():
            if not isinstance(arg, Mapping) or len(arg) != 1:
                raise invalid_arguments(
                    f"argument {name!r} must be an object with one of 'value', 'blob', 'execution'",
                    param=name,
                )
            ((kind, value),) = arg.items()
            if kind == "value":
                pass
            elif kind == "blob":
                if not isinstance(value, str) or self.blob(value, user) is None:
                    raise invalid_arguments(
                        f"argument {name!r} refers to an unknown blob {value!r}", param=name
                    )
            elif kind == "execution":
                if not isinstance(value, str):
                    raise invalid_arguments(
                        f"argument {name!r}: execution id must be a string", param=name
                    )
                try:
                    self.execution(value, user)
                except ApiError:
                    raise invalid_arguments(
                        f"argument {name!r} refers to an unknown execution {value!r}", param=name
                    ) from None
            else:
                raise invalid_arguments(
                    f"argument {name!r} must be an object with one of 'value', 'blob', 'execution'",
                    param=name,
                )
            checked[name] = {kind: value}
        return checked

    def resolve_lookup(self, key: str, user: str | None, param: str) -> dict[str, Any]:
        """A legacy ``lookup:<key>`` string as a v1 argument."""
        if valid_key(key):
            rec = self.store.get(key)
            if rec is not None and self.auth.can_see_execution(user, rec.owner):
                return {"execution": key}
            if self.blob(key, user) is not None:
                return {"blob": key}
        raise invalid_arguments(
            f"argument {param!r}: 'lookup:{key}' refers to no stored object or execution",
            param=param,
        )

    def submit(
        self,
        spec: DaisiSpec,
        endpoint: str,
        args: dict[str, dict[str, Any]],
        user: str | None,
        *,
        eid: str | None = None,
        idempotency_key: str | None = None,
        key_stored: bool = True,
    ) -> tuple[ExecutionRecord, bool]:
        """Create (and schedule) a validated execution; ``(record, created)``.

        ``key_stored=False``: the idempotency key is known not to be in the store's
        table (:meth:`Store.stored_keys`, asked in this turn). Call :meth:`Store.commit`
        before answering: then the execution is durable.
        """
        scope = (user or "", idempotency_key) if idempotency_key else None
        if scope is not None:
            try:
                earlier = self.store.idempotent(
                    *scope, (spec.id, endpoint, args), stored=key_stored
                )
            except IdempotencyMismatch as exc:
                raise ApiError(
                    409,
                    "idempotency_mismatch",
                    f"the idempotency key {idempotency_key!r} was already used with a different"
                    f" request ({exc}); use a new key for a new request",
                ) from None
            if earlier is not None:
                return earlier, False
        rec = self.store.create(
            daisi_id=spec.id,
            endpoint=endpoint,
            owner=user,
            args=args,
            eid=eid,
            idempotency=scope,
        )
        self._schedule(rec)
        return rec, True

    def _schedule(self, rec: ExecutionRecord) -> None:
        task = asyncio.get_running_loop().create_task(self._run(rec), name=f"execution {rec.id}")
        self._tasks[rec.id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(rec.id, None))

    async def _run(self, rec: ExecutionRecord) -> None:
        try:
            await self._execute(rec)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug of ours must not leave the execution hanging
            log.exception("execution %s", rec.id)
            self.store.finish(
                rec,
                ExecutionStatus.FAILED,
                error={"type": "daisi.RuntimeError", "message": repr(exc), "traceback": ""},
            )

    async def _execute(self, rec: ExecutionRecord) -> None:
        spec = self.registry.get(rec.daisi_id)
        if spec is None or spec.error:
            self._fail_broken(rec, spec.error if spec else None)
            return
        job_args: dict[str, dict[str, Any]] = {}
        for name, arg in rec.args.items():
            if "execution" in arg:
                up = await self.wait(arg["execution"], timeout=None)
                if up.status is not ExecutionStatus.FINISHED or up.result_key is None:
                    err = up.error or {}
                    self.store.finish(
                        rec,
                        ExecutionStatus.FAILED,
                        error={
                            "type": UPSTREAM_FAILED,
                            "message": (
                                f"argument {name!r}: upstream execution {up.id} "
                                f"{up.status.value.lower()}: "
                                f"{err.get('type', '')}: {err.get('message', '')}"
                            ),
                            "traceback": err.get("traceback", ""),
                        },
                    )
                    return
                found = await self._result_arg(up)
                if isinstance(found, str):  # its bytes were kept where it ran, and are gone
                    self.store.finish(
                        rec,
                        ExecutionStatus.FAILED,
                        error={
                            "type": UPSTREAM_FAILED,
                            "message": f"argument {name!r}: the result of upstream execution"
                            f" {up.id} is no longer available: {found}",
                            "traceback": "",
                        },
                    )
                    return
                job_args[name] = found
            elif "blob" in arg:
                job_args[name] = self._blob_arg(arg["blob"])
            else:
                job_args[name] = {"json": arg["value"]}
        result_key = RESULT_PREFIX + rec.id
        job = Job(
            eid=rec.id,
            endpoint=rec.endpoint,
            args=job_args,
            timeout=spec.timeout or self.config.timeout,
            result_path=self.store.blob_path(result_key),
            inline_limit=INLINE_RESULT_BYTES,
        )
        if rec.latest.is_terminal:
            return
        # Waiting for a free worker (or for one to start) is still QUEUED (a restart then
        # runs it again); the execution is RUNNING once a worker takes it.
        try:
            outcome = await self.lifecycle.run(spec.id, job, on_start=lambda: self.store.start(rec))
        except DaisiImportError as exc:
            if exc.error.get("type") == ENVIRONMENT_ERROR:  # the installer's words, up front
                self.store.finish(rec, ExecutionStatus.FAILED, error=exc.error)
            else:
                self._fail_broken(rec, error_text(exc.error), headline=str(exc))
            return
        except DaisiUnavailable:
            now = self.registry.get(rec.daisi_id)
            self._fail_broken(rec, now.error if now else None)
            return
        self._record_outcome(rec, result_key, outcome)

    def _fail_broken(self, rec: ExecutionRecord, why: str | None, *, headline: str = "") -> None:
        """FAILED: the Daisi can't run (``why``: the load or import error; None: the Daisi
        is no longer served)."""
        reason = headline or ("it is no longer served" if why is None else "")
        self.store.finish(
            rec,
            ExecutionStatus.FAILED,
            error={
                "type": DAISI_BROKEN,
                "message": f"the Daisi can't run: {reason}" if reason else "the Daisi can't run",
                "traceback": why or "the Daisi was removed from the served folder",
            },
        )

    async def _result_arg(self, up: ExecutionRecord) -> dict[str, Any] | str:
        """The result of ``up`` as an argument of a job: from the store, or a reference to
        where the backend keeps it (``{"held": id}``: its bytes never come here); or why
        it is gone."""
        assert up.result_key is not None
        if self.store.get_blob(up.result_key) is not None:
            return self._blob_arg(up.result_key)
        try:
            await self.backend.locate(up.id)
        except ResultUnavailable as exc:
            return str(exc)
        return {"held": up.id}

    def _blob_arg(self, key: str) -> dict[str, Any]:
        blob = self.store.get_blob(key)
        if blob is None:
            raise RuntimeError(f"blob {key} vanished")
        if blob.data is not None:
            return {"bytes": blob.data}
        return {"file": str(blob.path)}

    def _record_outcome(self, rec: ExecutionRecord, key: str, outcome: Outcome) -> None:
        if not outcome.ok:
            self.store.finish(rec, ExecutionStatus.FAILED, error=outcome.error)
            return
        result: tuple[str, bytes | Path | None, int]
        try:
            if isinstance(outcome, HeldOutcome):  # kept where it ran, until asked for
                result = (key, None, outcome.result_size)
            elif outcome.result_file is not None:
                result = (key, Path(outcome.result_file), outcome.result_size)
            else:
                result = self.store.result_blob(key, outcome.result or b"")
        except StorageError as exc:
            self.store.finish(
                rec,
                ExecutionStatus.FAILED,
                error={
                    "type": RESULT_ERROR,
                    "message": f"the result could not be stored: {exc.message}",
                    "traceback": "",
                },
            )
            return
        self.store.finish(
            rec, ExecutionStatus.FINISHED, result=result, result_json=outcome.result_json
        )

    async def fetch_result(self, rec: ExecutionRecord) -> None:
        """Make sure the result of a FINISHED ``rec`` is in the store: a result the
        backend kept where it ran (on a Dask worker) is brought here first, once.

        Raises:
            ApiError: 410 ``result_gone`` when it is no longer anywhere; 503
                ``cluster_unavailable`` while the cluster that keeps it is not connected.
            StorageError: it could not be stored.
        """
        key = rec.result_key
        if key is None or rec.status is not ExecutionStatus.FINISHED or rec.result_json:
            return
        if self.store.get_blob(key) is not None:
            return
        task = self._fetches.get(rec.id)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._fetch(rec, key))
            self._fetches[rec.id] = task
            task.add_done_callback(lambda _t: self._fetches.pop(rec.id, None))
        await asyncio.shield(task)

    async def _fetch(self, rec: ExecutionRecord, key: str) -> None:
        try:
            data = await self.backend.fetch(rec.id)
        except ResultUnavailable as exc:
            if exc.temporary:
                raise ApiError(
                    503, "cluster_unavailable", f"the result of execution {rec.id} can't be"
                    f" fetched now: {exc}"
                ) from None  # fmt: skip
            raise ApiError(
                410,
                "result_gone",
                f"the result of execution {rec.id} is no longer available: {exc}",
            ) from None
        if len(data) <= INLINE_BLOB_BYTES:
            self.store.put_blob(data, owner=rec.owner, key=key)
        else:
            path = await asyncio.to_thread(self.store.files.write, key, data)
            self.store.add_blob_file(key, path, len(data), owner=rec.owner)
        await self.store.commit()
        self.backend.release(rec.id)

    def _on_log(self, eid: str, stream: str, line: str) -> None:
        rec = self.store.get(eid)
        if rec is not None:
            self.store.log(rec, stream, line)

    def _lost(self, rec: ExecutionRecord) -> None:
        """The creation of ``rec`` could not be stored (its request was told): stop it."""
        task = self._tasks.get(rec.id)
        if task is not None:
            task.cancel()

    def cancel(self, rec: ExecutionRecord) -> None:
        """Stop an execution: CANCELLED now; its worker is killed and replaced."""
        if self.store.finish(
            rec,
            ExecutionStatus.CANCELLED,
            error={"type": CANCELLED, "message": "cancelled by request", "traceback": ""},
        ):
            task = self._tasks.get(rec.id)
            if task is not None:
                task.cancel()
