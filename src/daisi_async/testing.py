"""Run a real local Daisi runtime on an ephemeral loopback port, for tests and docs.

Example:
    >>> from daisi_async.testing import LocalRuntime
    >>> with LocalRuntime("examples/daisies") as rt:  # doctest: +SKIP
    ...     print(rt.url)  # http://127.0.0.1:40517

As a pytest plugin (``pytest_plugins = ["daisi_async.testing"]``), the fixture
``daisi_runtime`` serves ``examples/daisies`` (or the folder named by the
``DAISI_TEST_DAISIES`` environment variable) for the whole test session.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["LocalRuntime", "daisi_runtime"]


class LocalRuntime:
    """A ``daisi serve`` process on 127.0.0.1, started and stopped by this object.

    Keyword-only settings mirror the ``daisi serve`` options. The store lives in a
    temporary folder unless ``store`` is given; :meth:`restart` keeps it and the port.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        store: str | os.PathLike[str] | None = None,
        tokens: Mapping[str, str] | None = None,
        workers: int = 1,
        legacy_only: bool = False,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        startup_timeout: float = 60.0,
    ) -> None:
        self.path = Path(path).resolve()
        self._tmp = tempfile.TemporaryDirectory(prefix="daisi-runtime-")
        self.store = Path(store) if store is not None else Path(self._tmp.name) / "store"
        self.tokens = dict(tokens or {})
        self.workers = workers
        self.legacy_only = legacy_only
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.port = 0
        self.url = ""
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = Path(self._tmp.name) / "server.log"

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> LocalRuntime:
        """Start the server and wait until it answers."""
        ready = Path(self._tmp.name) / "ready.json"
        ready.unlink(missing_ok=True)
        cmd = [
            sys.executable, "-m", "daisi_async", "serve", str(self.path),
            "--host", "127.0.0.1", "--port", str(self.port), "--store", str(self.store),
            "--workers", str(self.workers), "--ready-file", str(ready),
        ]  # fmt: skip
        if self.tokens:
            tokens_file = Path(self._tmp.name) / "tokens.json"
            tokens_file.write_text(json.dumps(self.tokens))
            cmd += ["--tokens", str(tokens_file)]
        if self.legacy_only:
            cmd.append("--legacy-only")
        cmd += self.extra_args
        env = {**os.environ, **self.env}
        src = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        deadline = time.monotonic() + self.startup_timeout
        while not ready.exists():
            if self.process.poll() is not None:
                raise RuntimeError(f"the Daisi runtime exited at startup:\n{self.logs()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"the Daisi runtime did not start in time:\n{self.logs()}")
            time.sleep(0.02)
        info = json.loads(ready.read_text())
        self.url = info["url"]
        self.port = int(self.url.rsplit(":", 1)[1])
        return self

    def settle(self, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Wait until no Daisi (visible anonymously) is ``building`` or ``starting``;
        returns the Daisies as ``GET /v1/daisies`` lists them.

        Workers start in the background (``--workers``) or on first use, so right after
        :meth:`start` a Daisi may not be ``ready`` (or ``broken``) yet.
        """
        import httpx

        deadline = time.monotonic() + timeout
        while True:
            daisies: list[dict[str, Any]] = httpx.get(
                self.api + "/v1/daisies", timeout=timeout
            ).json()["daisies"]
            if all(d.get("state") not in ("building", "starting") for d in daisies):
                return daisies
            if time.monotonic() > deadline:
                raise RuntimeError(f"Daisies still starting after {timeout:g} s: {daisies}")
            time.sleep(0.05)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop gracefully (SIGTERM), then kill if needed."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def restart(self, *, kill: bool = False) -> LocalRuntime:
        """Stop (or kill) and start again on the same port with the same store."""
        self.kill() if kill else self.stop()
        return self.start()

    def logs(self) -> str:
        """What the server printed so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    @property
    def api(self) -> str:
        """The base URL of the routes (``url + "/pebble-api"``)."""
        return self.url + "/pebble-api"

    def __enter__(self) -> LocalRuntime:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the server and remove the temporary folder."""
        self.stop()
        self._tmp.cleanup()


def _examples() -> Path:
    env = os.environ.get("DAISI_TEST_DAISIES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "examples" / "daisies"


try:
    import pytest
except ImportError:  # pragma: no cover - pytest is optional
    pass
else:

    @pytest.fixture(scope="session")
    def daisi_runtime() -> Iterator[LocalRuntime]:
        """A runtime serving the example Daisies for the whole session."""
        with LocalRuntime(_examples()) as rt:
            yield rt
