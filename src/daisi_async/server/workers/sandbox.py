"""Running workers in a sandbox (bubblewrap): what Daisi code may see and do.

``daisi serve --isolation auto|sandbox|none`` (:func:`choose_isolation`): ``sandbox``
runs every worker under `bubblewrap <https://github.com/containers/bubblewrap>`_
(``bwrap``, the unprivileged sandbox Flatpak uses) and refuses to start without it;
``auto`` (the default) does so when a probe works, else runs without and says so;
``none`` runs Daisi code with the server's rights. The console says which is in force.

In the sandbox a worker (:meth:`Sandbox.command`)

* sees a file system made of read-only binds: the system (``/usr``, ``/etc``, the
  ``/lib`` and ``/bin`` folders, ``/sys``), the Python it runs (the server's interpreter,
  virtual environment and ``daisi_async``, or the Daisi's own environment under
  ``<store>/envs/<key>``), and its Daisi's own folder, read-only (the working
  directory). Nothing else: not the store, not the tokens or secrets files, not the
  other Daisies' folders (where a bound folder holds one of those, it is hidden again
  with an empty folder or file), not ``/etc/shadow``;
* writes only to a room of its own on disk (:class:`~.room.WorkerRoom`, under
  ``<store>/sandbox/``): ``/tmp`` (and ``/var/tmp``), ``HOME`` (``/run/daisi/home``)
  and the result folder ``/run/daisi/out``; it reads the large arguments of its job,
  hard-linked by the server into ``/run/daisi/in`` (read-only). The rest of the root
  is read-only, so writes never change the served tree (they fail with ``EROFS``);
* runs in a PID namespace of its own with a fresh ``/proc`` (``--unshare-pid``): it
  can't see or signal the server, the other workers or any other process; when the
  worker ends, everything in the namespace ends with it (its init dies, the kernel
  kills the rest). ``--die-with-parent``: the sandbox dies with the server;
  ``--new-session``: no terminal to inject into;
* has no capabilities (``--unshare-user --cap-drop ALL``, and no further user
  namespaces where bwrap can forbid them) and its own IPC namespace;
* keeps the network (Daisies call other Daisies at ``DAISI_BASE_URL`` and fetch data).

Why read-only rather than an overlay for the Daisi's folder: writes that fail loudly
are easier to understand than writes that vanish when the worker exits, and an
overlay needs bubblewrap 0.9 and a kernel that allows overlayfs in user namespaces.
Scratch space is ``/tmp`` and ``HOME``, private to each worker and removed with it.

Example:
    >>> sandbox, notice = choose_isolation("auto", root=Path("daisies"),
    ...                                    store=Path(".daisi"))  # doctest: +SKIP
    >>> sandbox.command(["python", "-c", "pass"], python=sys.executable,
    ...                 directory=Path("daisies/adder"))  # doctest: +SKIP
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .process import package_root
from .room import HOME_DIR, IN_DIR, OUT_DIR, WorkerRoom

__all__ = [
    "ISOLATION_MODES",
    "Sandbox",
    "SandboxUnavailable",
    "choose_isolation",
    "find_bwrap",
]

ISOLATION_MODES = ("auto", "sandbox", "none")
"""The values of ``daisi serve --isolation``."""

SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/sys")
"""Bound read-only into every sandbox when they exist (symbolic links stay links)."""

SYSTEM_SECRETS = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-")
"""System files hidden (bound to an empty file) in the sandbox; so are ``/etc/ssh``'s keys."""

ROOMS = "sandbox"
"""The folder of the store that holds the workers' rooms."""

PROBE_TIMEOUT = 20.0


class SandboxUnavailable(Exception):
    """``--isolation sandbox`` was asked for and bubblewrap can't run here (says why)."""


def find_bwrap() -> str | None:
    """The ``bwrap`` program on ``PATH``, or None."""
    return shutil.which("bwrap")


def _real(path: str | os.PathLike[str]) -> Path:
    return Path(os.path.realpath(path))


def _under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _python_prefixes(python: str) -> list[Path]:
    """The folders an interpreter needs: its virtual environment (when it is one) and the
    installation its executable really lives in."""
    found = []
    venv = Path(os.path.abspath(python)).parent.parent
    if (venv / "pyvenv.cfg").is_file():
        found.append(_real(venv))
    found.append(_real(python).parent.parent)
    return found


def server_python_paths() -> tuple[Path, ...]:
    """What a worker on the server's interpreter needs: the server's prefixes (virtual
    environment and base installation), ``daisi_async``'s folder, and the folders of
    the server's ``PYTHONPATH`` (workers inherit it)."""
    paths = {
        _real(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix) if p
    }
    paths.update(_python_prefixes(sys.executable))
    paths.add(_real(package_root()))
    for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        # (a relative entry is relative to the worker's folder, which is bound anyway)
        if os.path.isabs(entry) and os.path.isdir(entry):
            paths.add(_real(entry))
    return tuple(sorted(paths))


def _bwrap_version(bwrap: str) -> tuple[str, bool]:
    """``("bubblewrap 0.8.0", can_disable_userns)``."""
    try:
        version = subprocess.run(
            [bwrap, "--version"], capture_output=True, text=True, timeout=PROBE_TIMEOUT
        ).stdout.strip()
        helptext = subprocess.run(
            [bwrap, "--help"], capture_output=True, text=True, timeout=PROBE_TIMEOUT
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return "bubblewrap", False
    return version or "bubblewrap", "--disable-userns" in helptext


@dataclass(frozen=True)
class Sandbox:
    """How this server sandboxes its workers (see the module docstring).

    ``root`` is the served folder and ``store`` the store: both hidden from every
    worker but for the worker's own Daisi folder and environment; ``private_files``
    (the tokens and secrets files) are hidden too.
    """

    bwrap: str
    root: Path
    store: Path
    private_files: tuple[Path, ...] = ()
    version: str = "bubblewrap"
    disable_userns: bool = False
    python_paths: tuple[Path, ...] = field(default_factory=server_python_paths)
    """Folders of the server's Python, bound read-only (see :func:`server_python_paths`)."""

    @property
    def rooms(self) -> Path:
        """The folder of the workers' rooms (``<store>/sandbox``)."""
        return self.store / ROOMS

    # -- rooms ---------------------------------------------------------------------------
    def clear_rooms(self) -> None:
        """Remove the rooms a previous server left (call once the store is locked)."""
        shutil.rmtree(self.rooms, ignore_errors=True)

    def open_room(self) -> WorkerRoom:
        """A new, empty room for one worker."""
        self.rooms.mkdir(parents=True, exist_ok=True)
        return WorkerRoom(Path(tempfile.mkdtemp(prefix="w-", dir=self.rooms)))

    def environment(self, source: Mapping[str, str] | None = None) -> dict[str, str]:
        """``source`` (default: this process's environment) with ``HOME`` and the
        temporary folder variables pointing at the worker's private folders."""
        env = dict(os.environ if source is None else source)
        env["HOME"] = HOME_DIR
        env["TMPDIR"] = "/tmp"
        for name in ("TMP", "TEMP"):
            if name in env:
                env[name] = "/tmp"
        return env

    # -- the command line ----------------------------------------------------------------
    def command(
        self,
        inner: Sequence[str],
        *,
        python: str,
        directory: Path | None = None,
        room: WorkerRoom | None = None,
    ) -> list[str]:
        """The ``bwrap`` command line that runs ``inner`` (a worker on ``python``) for the
        Daisi in ``directory``, with ``room`` as its writable folders.

        Mounts apply in order, a later one covering what lies below its target: the
        system, the room, the Python; then the served tree is hidden, the Daisi's own
        folder bound; then the store and the private files are hidden, and what of the
        Python lies below them (the Daisi's own environment) is bound again.
        """
        mounts = _Mounts()
        for name in SYSTEM_PATHS:
            mounts.system(name)
        for name in ("/etc/resolv.conf", "/etc/localtime"):  # may link to /run, /var
            mounts.read_only(_real(name), only_files=True)
        if room is not None:
            mounts.private(room.tmp, Path("/tmp"))
            mounts.private(room.tmp, Path("/var/tmp"))
            mounts.private(room.home, Path(HOME_DIR))
            mounts.private(room.outbox, Path(OUT_DIR))
            mounts.private(room.inbox, Path(IN_DIR), writable=False)
        needed = [*self.python_paths, *_python_prefixes(python)]
        for path in needed:
            mounts.read_only(path)
        mounts.hide(_real(self.root))  # the served tree: the other Daisies' folders
        own = _real(directory) if directory is not None else None
        if own is not None:
            mounts.read_only(own)
        mounts.bind_again(needed)
        mounts.hide(_real(self.store))
        private: list[str | Path] = [*self.private_files, *SYSTEM_SECRETS]
        for file in [*private, *glob.glob("/etc/ssh/*_key")]:
            mounts.hide(_real(file))
        mounts.bind_again(needed)  # the Daisi's own environment, in the store
        args = [self.bwrap, "--unshare-user", "--unshare-pid", "--unshare-ipc"]
        args += ["--cap-drop", "ALL", "--die-with-parent", "--new-session"]
        if self.disable_userns:
            args.append("--disable-userns")
        args += ["--proc", "/proc", "--dev", "/dev", *mounts.args]
        if own is not None:
            args += ["--chdir", str(own)]
        args += ["--remount-ro", "/", "--", *inner]
        return args

    def probe(self) -> str | None:
        """Why a sandboxed interpreter can't start here (bwrap's own words), or None."""
        command = self.command([sys.executable, "-I", "-S", "-c", "pass"], python=sys.executable)
        try:
            done = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=PROBE_TIMEOUT,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return f"{type(exc).__name__}: {exc}"
        if done.returncode != 0:
            words = done.stderr.strip().splitlines()
            return words[-1] if words else f"bwrap exited with code {done.returncode}"
        return None


class _Mounts:
    """The mount arguments of one sandbox, in order, and what each path shows."""

    def __init__(self) -> None:
        self.args: list[str] = []
        self._ops: list[tuple[Path, bool]] = []  # (target, shows the host's own files there)
        self._hidden: list[Path] = []

    def shows(self, path: Path) -> bool:
        """Whether the sandbox shows the host's ``path`` so far: the last mount at or above
        it decides (nothing is shown where nothing is mounted)."""
        for target, host in reversed(self._ops):
            if _under(path, target):
                return host
        return False

    def system(self, name: str) -> None:
        """A top-level system folder: bound read-only, or a symbolic link kept a link."""
        if os.path.islink(name):
            self.args += ["--symlink", os.readlink(name), name]
        elif os.path.isdir(name):
            self.read_only(Path(name))

    def read_only(self, path: Path, *, only_files: bool = False) -> None:
        """Show the host's ``path`` read-only (unless it is shown already)."""
        if not path.exists() or (only_files and not path.is_file()) or self.shows(path):
            return
        self.args += ["--ro-bind", str(path), str(path)]
        self._ops.append((path, True))

    def private(self, source: Path, target: Path, *, writable: bool = True) -> None:
        """Mount the worker's own ``source`` folder at ``target``."""
        self.args += ["--bind" if writable else "--ro-bind", str(source), str(target)]
        self._ops.append((target, False))

    def hide(self, path: Path) -> None:
        """Hide the host's ``path`` (a folder becomes empty, a file empty) if it shows."""
        self._hidden.append(path)
        if not path.exists() or not self.shows(path):
            return
        if path.is_dir():
            self.args += ["--tmpfs", str(path)]
        else:
            self.args += ["--ro-bind", "/dev/null", str(path)]
        self._ops.append((path, False))

    def bind_again(self, paths: Iterable[Path]) -> None:
        """Show again those of ``paths`` that a hidden folder covers, unless one holds
        something hidden (then it stays hidden: the Python can't hold the store)."""
        for path in paths:
            if not any(_under(h, path) for h in self._hidden):
                self.read_only(path)


def choose_isolation(
    mode: str,
    *,
    root: Path,
    store: Path,
    private_files: Iterable[Path] = (),
    bwrap: str | None = None,
) -> tuple[Sandbox | None, str]:
    """The sandbox of ``daisi serve --isolation MODE`` (None: no isolation) and the line
    the console shows about it.

    Raises:
        SandboxUnavailable: ``mode`` is ``"sandbox"`` and bubblewrap can't run here.
        ValueError: ``mode`` is not one of :data:`ISOLATION_MODES`.
    """
    if mode not in ISOLATION_MODES:
        raise ValueError(f"isolation must be one of {', '.join(ISOLATION_MODES)}, not {mode!r}")
    unsafe = (
        "Daisi code runs with this server's rights: it can read the store, the tokens and"
        " secrets files and other Daisies' folders, signal the server, and write to the"
        " served folder"
    )
    if mode == "none":
        return None, f"isolation: none (--isolation none): {unsafe}"
    program = bwrap or find_bwrap()
    why: str | None = "bubblewrap (bwrap) is not installed"
    sandbox = None
    if program is not None:
        version, disable_userns = _bwrap_version(program)
        sandbox = Sandbox(
            bwrap=program,
            root=root,
            store=store,
            private_files=tuple(private_files),
            version=version,
            disable_userns=disable_userns,
        )
        why = sandbox.probe()
    if sandbox is not None and why is None:
        return sandbox, (
            f"isolation: sandbox ({sandbox.version}): each worker sees its Daisi's folder"
            " (read-only), its Python and the network; not the store, the tokens or secrets,"
            " other Daisies or other processes"
        )
    if mode == "sandbox":
        raise SandboxUnavailable(f"--isolation sandbox: the sandbox can't run here: {why}")
    return None, f"warning: the sandbox can't run here ({why}); isolation: none: {unsafe}"
