"""Building one environment with ``uv``, and linking the server's worker program into it.

An environment is a folder ``<store>/envs/<key>/``: a virtual environment made from
the server's own interpreter (``uv venv --python sys.executable``, without system
site-packages), the requirements installed by ``uv pip install``, and

* ``build.log``: what the build printed (credentials in URLs are masked);
* ``requirements.txt`` (and ``constraints.txt``): what was installed, normalized;
* ``daisi-server/``: symbolic links to the server's ``daisi_async`` and ``dill``
  packages, and ``site-packages/_daisi_server.pth``, which puts that folder first on
  ``sys.path`` and takes the server's own site-packages off it (see
  :func:`link_server`);
* ``.daisi-env-complete``: written last, once everything else is in place. A folder
  without it is a build that did not finish (a crash, a stop): it is removed and built
  again.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import site
import sys
import sysconfig
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import dill

import daisi_async

from .content import EnvOptions, Requirements, interpreter_identity

__all__ = ["BuildFailed", "BuildLog", "build_environment", "is_complete", "link_server"]

MARKER = ".daisi-env-complete"
LOG_FILE = "build.log"
LINK_DIR = "daisi-server"
PTH_FILE = "_daisi_server.pth"
TAIL_LINES = 15
"""How many of the installer's last lines a failure message quotes."""

_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@:]*(?::[^/\s@]*)?@")


def redact(text: str) -> str:
    """``text`` with the credentials of URLs masked.

    Example:
        >>> redact("Looking in https://me:s3cret@pkgs.example/simple")
        'Looking in https://****@pkgs.example/simple'
    """
    return _CREDENTIALS.sub(r"\1****@", text)


class BuildFailed(Exception):
    """An environment could not be built; the message ends with the installer's last lines."""


class BuildLog:
    """The lines of one build: appended to ``build.log`` as they come, and shown on the
    console through ``console`` (which adds the Daisies' names)."""

    def __init__(self, path: Path, console: Callable[[str], None]) -> None:
        self.path = path
        self._console = console
        self._file = open(path, "w", encoding="utf-8", errors="replace")  # noqa: SIM115
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)

    def line(self, text: str, *, echo: bool = True) -> None:
        """Record one line (masked); ``echo=False`` keeps it off the console."""
        text = redact(text.rstrip("\r\n"))
        self._file.write(text + "\n")
        self._file.flush()
        self.tail.append(text)
        if echo:
            self._console(text)

    def close(self) -> None:
        """Close the file (the lines stay readable with :func:`read_log`)."""
        self._file.close()


def read_log(env: Path, *, limit: int = 2000) -> list[str]:
    """The last ``limit`` lines of an environment's build log (none if it has none)."""
    try:
        text = (env / LOG_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    lines = text.splitlines()
    if len(lines) > limit:
        return [f"... ({len(lines) - limit} earlier lines)", *lines[-limit:]]
    return lines


def env_python(env: Path) -> Path:
    """The interpreter of an environment."""
    return env / "bin" / "python"


def is_complete(env: Path) -> bool:
    """Whether ``env`` is a finished build whose interpreter still starts from here."""
    return (env / MARKER).is_file() and env_python(env).exists()


def site_packages(env: Path) -> Path:
    """The site-packages folder of an environment made from this interpreter."""
    return env / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"


def _server_paths() -> list[str]:
    """Folders of the server's own packages, which must not show through in an
    environment (they come in through ``PYTHONPATH`` when the server is installed
    rather than run from a source tree)."""
    found = {os.path.dirname(os.path.dirname(os.path.abspath(daisi_async.__file__)))}
    found.update(site.getsitepackages())
    found.add(site.getusersitepackages())
    for name in ("purelib", "platlib"):
        found.add(sysconfig.get_path(name))
    return sorted(p for p in found if p)


def link_server(env: Path) -> None:
    """Make the server's ``daisi_async`` and ``dill`` importable in ``env`` (idempotent).

    The worker program lives in ``daisi_async`` and opens arguments with ``dill``: the
    worker must run the server's own copies (the protocol and the pickles must match),
    yet nothing else of the server's environment may show through. So the environment
    holds no copy of either: ``daisi-server/`` holds symbolic links to the server's two
    package folders (``dill`` is pure Python), and a ``.pth`` file puts that folder first
    on ``sys.path`` and removes the server's site-packages from it. A Daisi that
    requires ``dill`` therefore gets the server's. Called on every start, so a server
    that moved (another install) relinks the environments it reuses.
    """
    links = env / LINK_DIR
    links.mkdir(exist_ok=True)
    for module in (daisi_async, dill):
        target = str(Path(str(module.__file__)).resolve().parent)
        link = links / module.__name__
        with contextlib.suppress(OSError):
            if os.readlink(link) == target:
                continue
        tmp = links / f".{module.__name__}.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(target, target_is_directory=True)
        os.replace(tmp, link)
    paths = [str(links), *_server_paths()]
    if any("\n" in p or "\r" in p for p in paths):
        raise BuildFailed("a folder of the server or the store has a line break in its name")
    # Idempotent: site may read this file twice (``lib64`` is a link to ``lib``).
    line = (
        f"import sys; sys.path[:] = [{str(links)!r}]"
        f" + [p for p in sys.path if p not in {set(paths)!r}]\n"
    )
    pth = site_packages(env) / PTH_FILE
    if not pth.is_file() or pth.read_text(encoding="utf-8") != line:
        tmp_pth = pth.with_suffix(".tmp")
        tmp_pth.write_text(line, encoding="utf-8")
        os.replace(tmp_pth, pth)


async def build_environment(
    env: Path,
    requirements: Requirements,
    *,
    folder: Path,
    options: EnvOptions,
    uv: str,
    log: BuildLog,
) -> None:
    """Build ``env`` for ``requirements`` (run from the Daisi's ``folder``, where relative
    paths point); raise :class:`BuildFailed` with the installer's last lines."""
    started = time.monotonic()
    log.line(f"environment {env.name} for Python {interpreter_identity()['version']}", echo=False)
    (env / "requirements.txt").write_text(requirements.text(), encoding="utf-8")
    command = [uv, "pip", "install", "--python", str(env_python(env)), *_common(options)]
    if options.index_url:  # by the environment: a password stays out of the process list
        log.line(f"  index {options.index_url}", echo=False)
    command += ["-r", str(env / "requirements.txt")]
    if requirements.constraints:
        (env / "constraints.txt").write_text(requirements.constraints_text(), encoding="utf-8")
        command += ["-c", str(env / "constraints.txt")]
    for line in requirements.lines:
        log.line(f"  requires {line}", echo=False)
    venv = [uv, "venv", "--python", sys.executable, "--no-config", "--no-project"]
    venv += ["--allow-existing", "--color", "never", str(env)]
    await _run(
        venv,
        cwd=env,
        log=log,
        what="creating the virtual environment",
    )
    await _run(
        command,
        cwd=folder,
        log=log,
        what="installing the requirements",
        extra={"UV_INDEX_URL": options.index_url} if options.index_url else None,
    )
    link_server(env)
    await _run(
        [str(env_python(env)), "-c", "import daisi_async.server._frames, dill"],
        cwd=env,
        log=log,
        what="checking that the worker program imports",
    )
    _write_marker(env)
    log.line(f"environment ready in {time.monotonic() - started:.1f} s", echo=False)


def _common(options: EnvOptions) -> list[str]:
    args = ["--no-config", "--color", "never", "--no-progress"]
    for place in options.find_links:
        args += ["--find-links", place]
    if options.offline:
        args.append("--offline")
    return args


def _write_marker(env: Path) -> None:
    tmp = env / f"{MARKER}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"python": interpreter_identity(), "built": time.time()}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, env / MARKER)
    with contextlib.suppress(OSError):  # the rename itself survives a machine crash
        fd = os.open(env, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def prepare_folder(env: Path) -> None:
    """Remove what an unfinished build left, and make the (empty) folder."""
    if env.exists() and not is_complete(env):
        shutil.rmtree(env)
    env.mkdir(parents=True, exist_ok=True)


def _die_with(server: int) -> Callable[[], None]:
    """Linux: the installer gets SIGKILL when the server dies, even by SIGKILL (a restarted
    server must not find it still writing into the folder it builds again)."""

    def in_child() -> None:  # pragma: no cover - runs in the child, before exec
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            return
        if os.getppid() != server:  # the server died before prctl took effect
            os._exit(1)

    return in_child


async def _run(
    command: Sequence[str],
    *,
    cwd: Path,
    log: BuildLog,
    what: str,
    extra: Mapping[str, str] | None = None,
) -> None:
    """Run one step, its output (stdout and stderr) going to ``log`` line by line."""
    environ = {**os.environ, "NO_COLOR": "1", "UV_NO_PROGRESS": "1", **(extra or {})}
    for name in ("VIRTUAL_ENV", "PYTHONPATH"):  # the environment alone decides what imports
        environ.pop(name, None)
    log.line("$ " + " ".join(command), echo=False)
    log.tail.clear()  # a failure quotes this step's output only
    proc = await asyncio.create_subprocess_exec(
        *command,
        cwd=str(cwd),
        env=environ,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with(os.getpid()) if sys.platform == "linux" else None,
    )
    try:
        assert proc.stdout is not None
        while True:
            raw = await proc.stdout.readline()
            if not raw:
                break
            log.line(raw.decode("utf-8", errors="replace"))
        code = await proc.wait()
    except BaseException:  # cancelled (a stop, the time limit): no installer left behind
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(proc.wait(), 5)
        raise
    if code != 0:
        tail = "\n".join(log.tail)
        raise BuildFailed(f"{what} failed (exit code {code}):\n{tail}")
