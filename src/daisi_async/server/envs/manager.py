"""The environments of a runtime's Daisies: which one each Daisi uses, and their builds."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..registry import DaisiSpec
from .build import (
    LOG_FILE,
    BuildFailed,
    BuildLog,
    build_environment,
    env_python,
    is_complete,
    link_server,
    prepare_folder,
    read_log,
)
from .content import EnvOptions, Requirements, environment_key, read_requirements

__all__ = ["ENVIRONMENT_ERROR", "EnvironmentBroken", "Environments"]

ENVIRONMENT_ERROR = "daisi.EnvironmentError"
"""The error type of an execution whose Daisi's environment could not be built."""


class EnvironmentBroken(Exception):
    """A Daisi's environment can't be had; the message says why (the installer's words)."""


def _print_stderr(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


@dataclass
class _Env:
    key: str
    path: Path
    folder: Path
    """The first Daisi's folder: the installer runs there (relative paths)."""
    requirements: Requirements
    names: list[str] = field(default_factory=list)
    state: str = "new"  # new, queued, building, ready, failed
    error: str | None = None
    task: asyncio.Task[None] | None = None
    linked: bool = False


@dataclass
class _Choice:
    env: _Env | None = None
    """None: the Daisi runs in the server's environment."""
    error: str | None = None


class Environments:
    """Which environment each Daisi runs in, and the builds of those that are missing.

    :meth:`plan` looks at every Daisi (cheap: it reads files); :meth:`interpreter`
    returns a Daisi's interpreter, building its environment first if needed. Builds
    run in the background, at most ``options.max_builds`` at once; Daisies with the
    same requirements share one environment (and one build).

    Example:
        >>> envs = Environments(Path(".daisi/envs"), EnvOptions())  # doctest: +SKIP
        >>> envs.plan(registry.all())                                # doctest: +SKIP
        >>> python = await envs.interpreter(spec)                    # doctest: +SKIP
    """

    def __init__(
        self,
        root: Path,
        options: EnvOptions,
        *,
        console: Callable[[str], None] = _print_stderr,
    ) -> None:
        self.root = root
        self.options = options
        self._console = console
        self._choices: dict[str, _Choice] = {}
        self._envs: dict[str, _Env] = {}
        self._slots = asyncio.Semaphore(max(1, options.max_builds))
        self._uv: str | None = None

    # -- choosing ----------------------------------------------------------------------
    def plan(self, specs: Iterable[DaisiSpec]) -> None:
        """Decide each Daisi's environment; note the ones already built (nothing starts)."""
        for spec in specs:
            self._choices[spec.id] = self._choose(spec)

    def _choose(self, spec: DaisiSpec) -> _Choice:
        if self.options.shared:
            if spec.missing_requirements:
                self._console(
                    f"[{spec.full_name}] requirements not installed in the server's environment:"
                    f" {', '.join(spec.missing_requirements)} (--shared-env: whether the module"
                    " imports decides)"
                )
            return _Choice()
        requirements = read_requirements(spec.path)
        if requirements is None or (requirements.error is None and not requirements.lines):
            return _Choice()  # nothing to install: the server's environment, as before
        if requirements.error is not None:
            return _Choice(error=requirements.error)
        uv = self._find_uv()
        if uv is None:
            return _Choice(
                error="uv, which builds Daisies' environments, is not installed"
                " (pip install uv; or serve with --shared-env)"
            )
        key = environment_key(requirements, options=self.options, folder=spec.path)
        env = self._envs.get(key)
        if env is None:
            env = self._envs[key] = _Env(
                key=key, path=self.root / key, folder=spec.path, requirements=requirements
            )
            if is_complete(env.path):
                env.state = "ready"
        env.names.append(spec.full_name)
        return _Choice(env=env)

    def _find_uv(self) -> str | None:
        if self._uv is None:
            try:
                from uv import find_uv_bin

                self._uv = find_uv_bin()
            except (ImportError, FileNotFoundError):
                return None
        return self._uv

    # -- asking ------------------------------------------------------------------------
    def ready_now(self, spec: DaisiSpec) -> bool:
        """Whether :meth:`interpreter` answers without a build (built, shared or broken)."""
        choice = self._choices.get(spec.id)
        return choice is None or choice.env is None or choice.env.state in ("ready", "failed")

    async def interpreter(self, spec: DaisiSpec) -> str:
        """The interpreter the Daisi's workers run, once its environment is ready.

        Starts the build if needed and waits for it (cancelling the wait leaves the build
        running). Raises :class:`EnvironmentBroken` when the environment can't be had.
        """
        choice = self._choices.get(spec.id)
        if choice is None or choice.env is None:
            if choice is not None and choice.error is not None:
                raise EnvironmentBroken(choice.error)
            return sys.executable
        env = choice.env
        if env.state not in ("ready", "failed"):
            if env.task is None:
                env.task = asyncio.get_running_loop().create_task(
                    self._build(env), name=f"environment {env.key}"
                )
            await asyncio.shield(env.task)
        if env.state == "ready" and not env.linked:
            try:
                link_server(env.path)
            except (OSError, BuildFailed) as exc:
                env.state, env.error = "failed", f"the environment could not be linked: {exc}"
            else:
                env.linked = True
        if env.state != "ready":
            raise EnvironmentBroken(env.error or "its environment could not be built")
        return str(env_python(env.path))

    def own(self, spec: DaisiSpec) -> bool:
        """Whether the Daisi has an environment of its own (not the server's)."""
        choice = self._choices.get(spec.id)
        return choice is not None and choice.env is not None

    def state(self, spec: DaisiSpec) -> str:
        """``shared`` (the server's environment), ``queued`` (waiting for a build slot),
        ``building``, ``ready`` or ``failed``."""
        choice = self._choices.get(spec.id)
        if choice is None or (choice.env is None and choice.error is None):
            return "shared"
        if choice.env is None:
            return "failed"
        return "queued" if choice.env.state == "new" else choice.env.state

    def error(self, spec: DaisiSpec) -> str | None:
        """Why the Daisi's environment can't be had, or None."""
        choice = self._choices.get(spec.id)
        if choice is None:
            return None
        if choice.env is None:
            return choice.error
        return choice.env.error if choice.env.state == "failed" else None

    def build_info(self, spec: DaisiSpec) -> dict[str, Any]:
        """``{"state", "log"}``: the build's state and the lines of its log."""
        choice = self._choices.get(spec.id)
        log: list[str] = []
        if choice is not None and choice.env is not None:
            log = read_log(choice.env.path)
        elif choice is not None and choice.error is not None:
            log = [choice.error]
        return {"state": self.state(spec), "log": log}

    async def close(self) -> None:
        """Stop the builds still running (their folders are rebuilt on the next start)."""
        tasks = [env.task for env in self._envs.values() if env.task and not env.task.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task

    # -- building ----------------------------------------------------------------------
    def _say(self, env: _Env, text: str) -> None:
        self._console(f"[{', '.join(env.names)}] {text}")

    async def _build(self, env: _Env) -> None:
        env.state = "queued"
        async with self._slots:
            env.state = "building"
            started = time.monotonic()
            self._say(env, f"building the environment {env.key} ({env.path})")
            try:
                await asyncio.wait_for(self._build_in(env), self.options.build_timeout)
            except asyncio.TimeoutError:
                env.error = f"the build took longer than {self.options.build_timeout:g} s"
            except BuildFailed as exc:
                env.error = f"its environment could not be built: {exc}"
            except Exception as exc:  # the disk, a missing interpreter: this Daisi only
                env.error = f"its environment could not be built: {exc!r}"
            if env.error is None:
                env.state = "ready"
                self._say(env, f"environment ready in {time.monotonic() - started:.1f} s")
            else:
                env.state = "failed"
                self._say(env, f"environment build FAILED: {env.error}")

    async def _build_in(self, env: _Env) -> None:
        await asyncio.to_thread(prepare_folder, env.path)  # a large unfinished build: slow
        assert self._uv is not None
        log = BuildLog(env.path / LOG_FILE, lambda text: self._say(env, f"| {text}"))
        try:
            try:
                await build_environment(
                    env.path,
                    env.requirements,
                    folder=env.folder,
                    options=self.options,
                    uv=self._uv,
                    log=log,
                )
            except BuildFailed as exc:
                log.line(f"build failed: {str(exc).splitlines()[0]}", echo=False)
                raise
        finally:
            log.close()
        env.linked = True
