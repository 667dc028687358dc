"""Containment over raw HTTP: every process a Daisi starts belongs to its execution or
its worker, the memory limit counts them, and workers see only an allowlisted environment.

The Daisies are copies of tests/daisies/_procs/app.py written into a temporary folder:
"Procs" (the runtime's limits) and "Fuse" (a 3 s time limit). Each worker starts a
helper process at import time. The runtime tests run with and without the sandbox
(``--isolation none`` and ``sandbox``): without it the worker contains its processes
(a subreaper, tree kills); in it, its PID namespace makes that total.

The Daisi names each process ``[namespace, pid]`` (:func:`locate` finds the host's pid:
in the sandbox, pids are those of the worker's own namespace). Process checks read
``/proc/<pid>/stat``. A killed child of a worker must be reaped by the worker (the
worker is their subreaper); a zombie whose parent is init (pid 1) counts as gone, since
init reaps it (this machine's init does so within seconds).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.isolation import ISOLATIONS
from tests.support.v1_calls import call, submit, wait

import daisi_async
from daisi_async.server.workers import proctree
from daisi_async.testing import LocalRuntime

SOURCE = Path(__file__).resolve().parents[1] / "daisies" / "_procs" / "app.py"
PACKAGE_ROOT = str(Path(daisi_async.__file__).resolve().parent.parent)  # what the runtime runs
SECRET = ("DAISI_TEST_API_TOKEN", "hunter2-do-not-leak")
PASSED = ("DAISI_TEST_PASSED_ON_PURPOSE", "visible")
SERVER_ENV = dict([SECRET, PASSED])
LIMITS = ["--memory-limit", "300MB"]


def build_tree(root: Path) -> Path:
    """A folder of two Daisies running the Procs code: "Procs" and "Fuse" (3 s limit)."""
    for folder, config in (("procs", 'name = "Procs"\n'), ("fuse", 'name = "Fuse"\ntimeout = 3\n')):
        (root / folder).mkdir(parents=True)
        shutil.copy(SOURCE, root / folder / "app.py")
        (root / folder / "daisi.toml").write_text(config)
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tree(tmp_path_factory.mktemp("containment"))


@pytest.fixture(scope="module", params=ISOLATIONS)
def runtime(request: pytest.FixtureRequest, tree: Path) -> Iterator[LocalRuntime]:
    args = [*LIMITS, "--isolation", request.param]
    with LocalRuntime(tree, extra_args=args, env=SERVER_ENV) as rt:
        yield rt


def isolation_of(runtime: LocalRuntime) -> str:
    return runtime.extra_args[runtime.extra_args.index("--isolation") + 1]


def daisi_ids(client: httpx.Client) -> dict[str, str]:
    r = client.get("/v1/daisies")
    assert r.status_code == 200, r.text
    daisies = r.json()["daisies"]
    assert all(d["broken"] is None for d in daisies), daisies
    return {d["name"]: str(d["id"]) for d in daisies}


@pytest.fixture(scope="module")
def ids(client: httpx.Client) -> dict[str, str]:
    return daisi_ids(client)


def value(execution: dict[str, Any]) -> Any:
    assert execution["status"] == "FINISHED", execution
    return execution["result"]["value"]


# -- processes ---------------------------------------------------------------------------

HOST_NAMESPACE = os.stat("/proc/self/ns/pid").st_ino
Named = list[int]  # [namespace, pid], as the Daisi names a process


def proc_state(pid: int) -> tuple[str, int] | None:
    """``(state, ppid)`` of ``pid``, or None once it is reaped."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1])


def _namespace(pid: int | str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/pid").st_ino
    except OSError:
        return None


def locate(named: Named) -> int | None:
    """The host's pid of the process ``[namespace, pid]`` (zombies included), or None."""
    namespace, pid = named
    if namespace == HOST_NAMESPACE:
        return pid if proc_state(pid) is not None else None
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        nspid = fields.get("NSpid", "").split()
        if len(nspid) < 2 or int(nspid[-1]) != pid:
            continue
        # A zombie has left its namespace: its parent (in the namespace) tells.
        own = _namespace(entry)
        if own is None:
            own = _namespace(fields.get("PPid", "").strip() or 0)
        if own == namespace:
            return int(entry)
    return None


def running(pid: int) -> bool:
    """Alive and not a zombie."""
    st = proc_state(pid)
    return st is not None and st[0] not in ("Z", "X")


def running_named(named: Named) -> bool:
    host = locate(named)
    return host is not None and running(host)


def gone(pid: int) -> bool:
    """Reaped, or a zombie left to init (which reaps it)."""
    st = proc_state(pid)
    return st is None or (st[0] in ("Z", "X") and st[1] == 1)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> float:
    """Poll ``predicate``; return the seconds it took to hold."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < timeout, "condition not reached in time"
        time.sleep(0.01)
    return time.monotonic() - started


def read_pids(client: httpx.Client, eid: str, timeout: float = 30.0) -> list[Named]:
    """The processes ``spawn`` started, from its ``pids:`` log line."""
    found: list[Named] = []

    def printed() -> bool:
        r = client.get(f"/v1/executions/{eid}/logs")
        assert r.status_code == 200, r.text
        for line in r.json()["lines"]:
            if line["line"].startswith("pids: "):
                found.extend(json.loads(line["line"][len("pids: ") :]))
                return True
        return False

    wait_until(printed, timeout)
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def sleepers(server_pid: int) -> list[int]:
    """The ``sleep 300`` processes below the server (helpers and what ``spawn`` starts)."""
    return [p.pid for p in proctree.descendants(server_pid) if cmdline(p.pid) == "sleep 300"]


def workers_of(server_pid: int) -> list[int]:
    """The server's worker processes (in the sandbox: the bwrap process of each)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = proc_state(int(entry))
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if st is not None and st[1] == server_pid and b"daisi_async.server.workers.program" in cmd:
            found.append(int(entry))
    return found


# -- the memory limit counts the whole process tree --------------------------------------


@pytest.mark.parametrize("endpoint", ["child_leak", "fork_leak"])
def test_memory_limit_counts_child_processes(
    client: httpx.Client, ids: dict[str, str], endpoint: str
) -> None:
    ex = call(client, ids["Procs"], endpoint, megabytes=600, seconds=3)
    assert ex["status"] == "FAILED", ex
    assert ex["error"]["type"] == "daisi.MemoryLimitExceeded"
    assert "memory limit of 300 MiB" in ex["error"]["message"]
    assert "child processes" in ex["error"]["message"]
    # Small children are fine, and the replaced worker serves the next call.
    assert value(call(client, ids["Procs"], endpoint, megabytes=20, seconds=0.1)) == 0


# -- children belong to their execution --------------------------------------------------


@pytest.mark.parametrize("then", ["return", "raise"])
def test_children_are_gone_when_the_execution_ends(
    client: httpx.Client, ids: dict[str, str], then: str
) -> None:
    did = ids["Procs"]
    helper = value(call(client, did, "helper"))
    eid = submit(client, did, "spawn", then=then)
    ex = wait(client, eid)
    pids = read_pids(client, eid, timeout=0)
    assert len(pids) == 3
    # Killed before the execution was reported: none runs once the client sees the end.
    assert [p for p in pids if running_named(p)] == []
    if then == "return":
        assert value(ex) == pids
    else:
        assert ex["status"] == "FAILED" and ex["error"]["type"] == "builtins.RuntimeError"
    # The worker reaps them (it is their subreaper), including the daemon.
    wait_until(lambda: all(locate(p) is None for p in pids))
    # The import-time helper lives on with its worker, which keeps serving.
    assert value(call(client, did, "helper")) == helper
    assert running_named(helper)


@pytest.mark.parametrize("how", ["time limit", "cancel", "crash"])
def test_children_are_gone_when_their_worker_is_stopped(
    client: httpx.Client, ids: dict[str, str], how: str
) -> None:
    did = ids["Fuse"] if how == "time limit" else ids["Procs"]
    helper = value(call(client, did, "helper"))
    # "crash" lets the worker live 2 s so that the runtime has seen its children.
    then, seconds = ("exit", 2.0) if how == "crash" else ("sleep", 60.0)
    eid = submit(client, did, "spawn", then=then, seconds=seconds)
    named = read_pids(client, eid)
    pids = [locate(p) for p in [*named, helper]]  # the host's pids, while they run
    assert all(p is not None and running(p) for p in pids), (named, pids)
    if how == "cancel":
        r = client.post(f"/v1/executions/{eid}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "CANCELLED", r.text
    ex = wait(client, eid)
    expected = {
        "time limit": "daisi.TimeLimitExceeded",
        "cancel": "daisi.Cancelled",
        "crash": "daisi.WorkerCrashed",
    }[how]
    assert ex["error"]["type"] == expected, ex
    wait_until(lambda: all(gone(p) for p in pids if p is not None))
    # A new worker (with a new helper) serves the next call.
    new_helper = value(call(client, did, "helper"))
    assert new_helper != helper and running_named(new_helper)


# -- nothing outlives the server ---------------------------------------------------------


@pytest.mark.parametrize("isolation", ISOLATIONS)
@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_nothing_outlives_the_server(tmp_path: Path, how: str, isolation: str) -> None:
    root = build_tree(tmp_path / "tree")
    with LocalRuntime(root, workers=2, extra_args=["--isolation", isolation]) as rt:
        assert rt.process is not None
        server = rt.process.pid
        with httpx.Client(base_url=rt.api, timeout=60) as client:
            procs = daisi_ids(client)["Procs"]
            eid = submit(client, procs, "spawn", then="sleep", seconds=120)
            read_pids(client, eid)
        # The workers start in the background: wait until all four have imported (each
        # started a helper) and the execution's three processes run.
        wait_until(lambda: len(sleepers(server)) == 4 + 3, 30)
        workers = workers_of(server)
        assert len(workers) == 4  # two per Daisi, one of them busy
        everything = [p.pid for p in proctree.descendants(server)]
        assert set(sleepers(server)) | set(workers) <= set(everything)
        assert all(running(p) for p in everything)
        rt.kill() if how == "SIGKILL" else rt.stop()
        wait_until(lambda: all(gone(p) for p in everything))


# -- the process-tree module -------------------------------------------------------------

# A subreaper that keeps starting orphans in sessions of their own, each of which starts
# three sleepers; every process appends its pid to argv[1].
SPREADER = r"""
import ctypes, os, sys, time
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
log = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
def note():
    os.write(log, b"%d\n" % os.getpid())
while True:
    if os.fork() == 0:
        if os.fork() == 0:
            os.setsid()
            note()
            for _ in range(3):
                if os.fork() == 0:
                    note()
                    time.sleep(300)
                    os._exit(0)
                time.sleep(0.01)
            time.sleep(300)
        os._exit(0)
    os.wait()
    time.sleep(0.02)
"""


def test_kill_tree_beats_fork_races(tmp_path: Path) -> None:
    log = tmp_path / "pids"
    root = subprocess.Popen([sys.executable, "-c", SPREADER, str(log)])
    try:
        wait_until(lambda: log.exists() and len(log.read_text().split()) >= 40, 30)
        assert proctree.has_children()
        below = {p.pid for p in proctree.descendants(root.pid)}
        assert len(below) >= 40
        assert proctree.tree_rss(root.pid) > 40 * 4096
        killed = proctree.kill_tree(root.pid)  # while it keeps forking
        assert root.pid in killed and len(killed) >= 40
        assert root.wait(10) == -9
        pids = [int(line) for line in log.read_text().split()]
        wait_until(lambda: all(gone(p) for p in [*pids, *below]))
        assert proctree.descendants(root.pid) == []
    finally:
        if root.poll() is None:
            root.kill()
            root.wait()


# -- the workers' environment ------------------------------------------------------------


def test_workers_get_an_allowlisted_environment(
    client: httpx.Client, ids: dict[str, str], runtime: LocalRuntime
) -> None:
    from daisi_async.server.workers.environment import ALLOWED_NAMES, ALLOWED_PREFIXES

    env = value(call(client, ids["Procs"], "environment"))
    assert SECRET[0] not in env and PASSED[0] not in env
    assert not any(SECRET[1] in v for v in env.values())
    sandboxed = isolation_of(runtime) == "sandbox"
    for name in ("PATH", "HOME", "LANG", "TZ", "TMPDIR"):
        if sandboxed and name in ("HOME", "TMPDIR"):  # the worker's private folders
            assert env[name] == {"HOME": "/run/daisi/home", "TMPDIR": "/tmp"}[name]
        elif name in os.environ:
            assert env[name] == os.environ[name], name
    assert env["DAISI_BASE_URL"] == runtime.url
    assert env["PYTHONPATH"].split(os.pathsep)[0] == PACKAGE_ROOT
    extra = {"DAISI_BASE_URL", "PYTHONPATH"}
    if sandboxed:  # bwrap says where it started the worker: the Daisi's folder
        assert env.pop("PWD") == str((runtime.path / "procs").resolve())
    unexpected = [
        k for k in env if k not in ALLOWED_NAMES | extra and not k.startswith(ALLOWED_PREFIXES)
    ]
    assert unexpected == []


def test_env_pass_passes_named_variables(tree: Path) -> None:
    args = [*LIMITS, "--env-pass", PASSED[0], "--env-pass", "DAISI_TEST_NOT_SET_ANYWHERE"]
    with (
        LocalRuntime(tree, extra_args=args, env=SERVER_ENV) as rt,
        httpx.Client(base_url=rt.api, timeout=60) as client,
    ):
        env = value(call(client, daisi_ids(client)["Procs"], "environment"))
    assert env[PASSED[0]] == PASSED[1]
    assert SECRET[0] not in env
    assert "DAISI_TEST_NOT_SET_ANYWHERE" not in env


@pytest.mark.parametrize("bad", ["", "A=B", "1ABC", "WITH SPACE", "-"])
def test_env_pass_rejects_what_is_not_a_variable_name(tree: Path, tmp_path: Path, bad: str) -> None:
    store = tmp_path / "store"
    cmd = [sys.executable, "-m", "daisi_async", "serve", str(tree), "--store", str(store)]
    done = subprocess.run(
        [*cmd, "--port", "0", f"--env-pass={bad}"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": PACKAGE_ROOT},
    )
    assert done.returncode == 2, done.stderr
    message = f"Invalid value for '--env-pass': not an environment variable name: {bad!r}"
    assert message in done.stderr
    assert not store.exists()  # rejected before anything was created
