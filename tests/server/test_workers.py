"""The warm worker pool: real worker processes running Daisies written to tmp_path."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import dill
import pytest

from daisi_async.server.workers import DaisiImportError, Job, Outcome, WorkerPool
from daisi_async.server.workers.process import WORKER_MODULE

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    """The pool is asyncio-only."""
    return "asyncio"


APP = """
import asyncio
import logging
import os
import sys
import threading
import time

log = logging.getLogger("app")


class Box:
    def __init__(self, x):
        self.x = x

    def double(self):
        return self.x * 2


def add(a, b):
    return a + b


def echo(value):
    return value


def pair():
    return (1, 2)


def big(n):
    return b"x" * n


def chatty(pause):
    print("first")
    time.sleep(pause)
    print("second", flush=True)
    sys.stdout.write("partial")
    return "done"


def threaded():
    t = threading.Thread(target=lambda: print("from a thread"))
    t.start()
    t.join()
    log.info("logged %d", 42)
    print("to stderr", file=sys.stderr)
    return None


def divide(a, b):
    return a / b


def gen():
    return (i for i in range(3))


def make_box(x):
    return Box(x)


def die(code):
    os._exit(code)


def segfault():
    import ctypes
    ctypes.string_at(0)


def kill_self():
    import signal
    os.kill(os.getpid(), signal.SIGKILL)


def sleep(seconds):
    time.sleep(seconds)
    return seconds


def hog(mb):
    b = bytearray(mb * 2**20)
    for i in range(0, len(b), 4096):
        b[i] = 1
    time.sleep(10)
    return len(b)


def child_hog(mb):
    import subprocess
    code = f"import time; b = b'x' * ({mb} * 2**20); time.sleep(10)"
    return subprocess.run([sys.executable, "-c", code]).returncode


def environment():
    return dict(os.environ)


def quit(code):
    sys.exit(code)


def interrupt():
    raise KeyboardInterrupt


def pid():
    return os.getpid()


def cwd():
    return os.getcwd()


def spawn_child():
    import subprocess
    p = subprocess.Popen(["sleep", "60"])
    print(p.pid, flush=True)
    time.sleep(60)


def bind(a, /, b, *rest, c=0, **kw):
    return [a, b, list(rest), c, kw]


def type_name(obj):
    return type(obj).__name__


async def twice(x):
    await asyncio.sleep(0.01)
    return x * 2


if __name__ == "__main__":
    open("main_ran.txt", "w").write("yes")

if '__main__' == __name__:
    open("main_ran_2.txt", "w").write("yes")
else:
    IMPORTED = True
"""


def make_daisi(root: Path, source: str, *, name: str = "d", **files: str) -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "app.py").write_text(textwrap.dedent(source))
    for filename, text in files.items():
        (folder / filename).write_text(textwrap.dedent(text))
    return folder


class Logs:
    def __init__(self) -> None:
        self.lines: list[tuple[float, str, str, str]] = []

    def __call__(self, eid: str, stream: str, line: str) -> None:
        self.lines.append((time.monotonic(), eid, stream, line))

    def of(self, eid: str) -> list[tuple[str, str]]:
        return [(s, ln) for _, e, s, ln in self.lines if e == eid]


@asynccontextmanager
async def open_pool(folder: Path, logs: Logs | None = None, **kw: Any) -> AsyncIterator[WorkerPool]:
    """A started pool with one warm worker (unless ``min_workers``/``max_workers`` say)."""
    kw.setdefault("min_workers", 1)
    kw.setdefault("max_workers", max(1, kw["min_workers"]))
    pool = WorkerPool(
        name=folder.name,
        directory=folder,
        entry="app.py",
        on_log=logs if logs is not None else Logs(),
        **kw,
    )
    pool.start()
    await pool.warm()
    try:
        yield pool
    finally:
        await pool.close()


_counter = 0


def job(tmp_path: Path, endpoint: str, timeout: float = 30, **args: Any) -> Job:
    global _counter
    _counter += 1
    eid = f"e{_counter}"
    packed: dict[str, dict[str, Any]] = {}
    for name, value in args.items():
        is_spec = (
            isinstance(value, dict)
            and len(value) == 1
            and ({"json", "file", "bytes"} >= value.keys())
        )
        packed[name] = value if is_spec else {"json": value}
    return Job(
        eid=eid,
        endpoint=endpoint,
        args=packed,
        timeout=timeout,
        result_path=str(tmp_path / f"{eid}.dill"),
    )


def value(outcome: Outcome) -> Any:
    assert outcome.ok, outcome.error
    if outcome.result_file is not None:
        return dill.loads(Path(outcome.result_file).read_bytes())
    assert outcome.result is not None
    return dill.loads(outcome.result)


def file_size(path: str) -> int | None:
    """The size of ``path``, or None if it does not exist."""
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return None


def alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def worker_children() -> list[int]:
    """Our child processes that run the worker program (zombies included)."""
    found = []
    me = str(os.getpid())
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = f.read().rsplit(")", 1)[1].split()[1]
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if ppid == me and WORKER_MODULE.encode() in cmd:
            found.append(int(entry))
    return found


async def wait_until(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


# --- the happy path ---------------------------------------------------------------------


async def test_run_returns_dill_and_json(tmp_path: Path) -> None:
    folder = make_daisi(tmp_path, APP)
    async with open_pool(folder) as pool:
        assert pool.status == "ready_to_update"
        out = await pool.run(job(tmp_path, "add", a=5, b=6))
        assert value(out) == 11
        assert out.result_json == "11"
        assert out.result_size == len(out.result or b"")

        doc = {"a": [1, 2.5, None, True, "é"], "b": {"c": []}}
        out = await pool.run(job(tmp_path, "echo", value=doc))
        assert value(out) == doc
        assert json.loads(out.result_json or "null") == doc

        # arguments as dill bytes in the frame body and in a file
        arg_file = tmp_path / "arg.dill"
        arg_file.write_bytes(dill.dumps(4))
        out = await pool.run(
            job(tmp_path, "add", a={"bytes": dill.dumps(3)}, b={"file": str(arg_file)})
        )
        assert value(out) == 7

        out = await pool.run(job(tmp_path, "twice", x=21))
        assert value(out) == 42

        out = await pool.run(
            job(tmp_path, "bind", a=1, b=2, rest=[3, 4], c=5, kw={"z": 6}, extra=7)
        )
        assert value(out) == [1, 2, [3, 4], 5, {"z": 6, "extra": 7}]

    # the module's main-guard blocks never ran; their else branch did
    assert not (folder / "main_ran.txt").exists()
    assert not (folder / "main_ran_2.txt").exists()


async def test_strict_json_detection(tmp_path: Path) -> None:
    folder = make_daisi(tmp_path, APP)
    async with open_pool(folder) as pool:
        out = await pool.run(job(tmp_path, "pair"))
        assert value(out) == (1, 2)
        assert out.result_json is None  # a tuple is not JSON
        for not_json in ({"x": {1, 2}}, b"raw"):
            out = await pool.run(job(tmp_path, "echo", value={"bytes": dill.dumps(not_json)}))
            assert value(out) == not_json
            assert out.result_json is None
        out = await pool.run(job(tmp_path, "echo", value={"bytes": dill.dumps({1: "a"})}))
        assert out.result_json is None  # non-str keys
        out = await pool.run(job(tmp_path, "echo", value={"bytes": dill.dumps(float("nan"))}))
        assert out.result_json is None
        out = await pool.run(job(tmp_path, "echo", value=None))
        assert out.result_json == "null"


async def test_large_result_goes_to_file(tmp_path: Path) -> None:
    folder = make_daisi(tmp_path, APP)
    async with open_pool(folder) as pool:
        j = job(tmp_path, "big", n=200_000)
        out = await pool.run(j)
        assert out.ok and out.result is None
        assert out.result_file == j.result_path
        assert out.result_size == file_size(j.result_path)
        assert out.result_size > 200_000
        assert value(out) == b"x" * 200_000
        assert file_size(j.result_path + ".tmp") is None

        small = await pool.run(job(tmp_path, "big", n=100))
        assert small.result_file is None and value(small) == b"x" * 100


# --- output capture ---------------------------------------------------------------------


async def test_logs_arrive_line_by_line_while_running(tmp_path: Path) -> None:
    folder = make_daisi(tmp_path, APP)
    logs = Logs()
    async with open_pool(folder, logs) as pool:
        j = job(tmp_path, "chatty", pause=0.5)
        out = await pool.run(j)
        ended = time.monotonic()
        assert value(out) == "done"
        assert logs.of(j.eid) == [("stdout", "first"), ("stdout", "second"), ("stdout", "partial")]
        first_at = next(t for t, e, _, ln in logs.lines if e == j.eid and ln == "first")
        assert ended - first_at >= 0.4  # the first line arrived before the job ended


async def test_thread_prints_logging_and_stderr_are_captured(tmp_path: Path) -> None:
    folder = make_daisi(tmp_path, APP)
    logs = Logs()
    async with open_pool(folder, logs) as pool:
        j = job(tmp_path, "threaded")
        assert value(await pool.run(j)) is None
        assert logs.of(j.eid) == [
            ("stdout", "from a thread"),
            ("stderr", "INFO app: logged 42"),
            ("stderr", "to stderr"),
        ]
        # lines belong to their own execution only
        j2 = job(tmp_path, "add", a=1, b=1)
        await pool.run(j2)
        assert logs.of(j2.eid) == []


# --- failures reported by the worker ----------------------------------------------------


async def test_exception_in_daisi(tmp_path: Path) -> None:
    folder = make_daisi(tmp_path, APP)
    async with open_pool(folder) as pool:
        pid = pool.pids[0]
        out = await pool.run(job(tmp_path, "divide", a=1, b=0))
        assert not out.ok and out.error is not None
        assert out.error["type"] == "builtins.ZeroDivisionError"
        assert out.error["message"] == "division by zero"
        tb = out.error["traceback"]
        assert str(folder / "app.py") in tb and "in divide" in tb
        assert tb.startswith("Traceback") and "workers/program" not in tb
        assert pool.pids == [pid]  # the worker lives on

        for endpoint, kind in (
            ("quit", "builtins.SystemExit"),
            ("interrupt", "builtins.KeyboardInterrupt"),
        ):
            out = await pool.run(
                job(tmp_path, endpoint, code=4) if endpoint == "quit" else job(tmp_path, endpoint)
            )
            assert out.error is not None and out.error["type"] == kind
        assert pool.pids == [pid]
        assert value(await pool.run(job(tmp_path, "pid"))) == pid

        out = await pool.run(job(tmp_path, "add", a=1))  # a missing argument
        assert out.error is not None and out.error["type"] == "builtins.TypeError"


async def test_argument_that_cannot_be_unpickled(tmp_path: Path) -> None:
    client_side = tmp_path / "client_side"
    client_side.mkdir()
    (client_side / "secretmod.py").write_text(
        "class Secret:\n    def __init__(self, v):\n        self.v = v\n"
    )
    sys.path.insert(0, str(client_side))
    try:
        import secretmod  # type: ignore[import-not-found]

        payload = dill.dumps(secretmod.Secret(1))  # by reference: module "secretmod"
    finally:
        sys.path.remove(str(client_side))
        sys.modules.pop("secretmod", None)
    assert b"secretmod" in payload

    folder = make_daisi(tmp_path, APP)
    async with open_pool(folder) as pool:
        out = await pool.run(job(tmp_path, "type_name", obj={"bytes": payload}))
        assert not out.ok and out.error is not None
        assert out.error["type"] == "daisi.ArgumentError"
        assert out.error["message"].startswith("could not unpickle argument 'obj': ")
        assert "No module named 'secretmod'" in out.error["message"]
        assert "ModuleNotFoundError" in out.error["traceback"]
        assert value(await pool.run(job(tmp_path, "add", a=1, b=2))) == 3


async def test_result_that_cannot_be_serialized(tmp_path: Path) -> None:
    folder = make_daisi(tmp_path, APP)
    async with open_pool(folder) as pool:
        out = await pool.run(job(tmp_path, "gen"))
        assert not out.ok and out.error is not None
        assert out.error["type"] == "daisi.ResultError"
        assert out.error["message"].startswith("result of type 'generator' could not be serialized")


# --- failures of the worker -------------------------------------------------------------


async def test_crashes_are_reported_and_workers_replaced(tmp_path: Path) -> None:
    folder = make_daisi(tmp_path, APP)
    async with open_pool(folder) as pool:
        cases = [
            (job(tmp_path, "die", code=3), "(exit code 3)"),
            (job(tmp_path, "segfault"), "(killed by signal SIGSEGV)"),
            (job(tmp_path, "kill_self"), "(killed by signal SIGKILL)"),
        ]
        for j, why in cases:
            before = pool.pids[0] if pool.pids else None
            out = await pool.run(j)
            assert not out.ok and out.error is not None
            assert out.error["type"] == "daisi.WorkerCrashed"
            assert out.error["message"] == (
                f"the worker process died while running this execution {why}"
            )
            assert value(await pool.run(job(tmp_path, "add", a=1, b=2))) == 3
            assert before is not None and pool.pids != [before]
            assert not alive(before)


async def test_time_limit(tmp_path: Path) -> None:
    folder = make_daisi(tmp_path, APP)
    logs = Logs()
    async with open_pool(folder, logs) as pool:
        pid = pool.pids[0]
        started = time.monotonic()
        out = await pool.run(job(tmp_path, "sleep", timeout=0.5, seconds=30))
        assert time.monotonic() - started < 2
        assert out.error == {
            "type": "daisi.TimeLimitExceeded",
            "message": "execution exceeded its time limit of 0.5 s",
            "traceback": "",
        }
        assert value(await pool.run(job(tmp_path, "sleep", seconds=0.01))) == 0.01
        assert pool.pids != [pid] and not alive(pid)

        # processes the Daisi started die with their worker
        j = job(tmp_path, "spawn_child", timeout=1)
        out = await pool.run(j)
        assert out.error is not None and out.error["type"] == "daisi.TimeLimitExceeded"
        child = int(logs.of(j.eid)[0][1])
        await wait_until(lambda: not alive(child))


async def test_memory_limit(tmp_path: Path) -> None:
    folder = make_daisi(tmp_path, APP)
    async with open_pool(folder, memory_limit=200 * 2**20) as pool:
        started = time.monotonic()
        out = await pool.run(job(tmp_path, "hog", mb=400))
        assert time.monotonic() - started < 5
        assert out.error is not None
        assert out.error["type"] == "daisi.MemoryLimitExceeded"
        assert "memory limit of 200 MiB" in out.error["message"]
        assert value(await pool.run(job(tmp_path, "add", a=1, b=2))) == 3


async def test_memory_limit_counts_child_processes(tmp_path: Path) -> None:
    folder = make_daisi(tmp_path, APP)
    async with open_pool(folder, memory_limit=200 * 2**20) as pool:
        started = time.monotonic()
        out = await pool.run(job(tmp_path, "child_hog", mb=400))
        assert time.monotonic() - started < 8  # killed, not waited for
        assert out.error is not None
        assert out.error["type"] == "daisi.MemoryLimitExceeded"
        assert "memory limit of 200 MiB" in out.error["message"]
        assert "child processes" in out.error["message"]
        assert value(await pool.run(job(tmp_path, "child_hog", mb=1))) == 0


async def test_workers_get_an_allowlisted_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAISI_TEST_SECRET_KEY", "not-for-daisies")
    monkeypatch.setenv("LC_TIME", "C")
    folder = make_daisi(tmp_path, APP)
    async with open_pool(folder) as pool:
        env = value(await pool.run(job(tmp_path, "environment")))
    assert "DAISI_TEST_SECRET_KEY" not in env
    assert env["PATH"] == os.environ["PATH"] and env["LC_TIME"] == "C"
    # an explicit environment is taken as it is (the pool only sets PYTHONPATH)
    async with open_pool(folder, env={"ONLY": "this"}) as pool:
        env = value(await pool.run(job(tmp_path, "environment")))
    # (Python itself sets LC_CTYPE when no locale is set: PEP 538 locale coercion)
    assert set(env) - {"LC_CTYPE"} == {"ONLY", "PYTHONPATH"}


async def test_cancellation_kills_the_worker(tmp_path: Path) -> None:
    folder = make_daisi(tmp_path, APP)
    async with open_pool(folder) as pool:
        pid = pool.pids[0]
        task = asyncio.ensure_future(pool.run(job(tmp_path, "sleep", seconds=30)))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await wait_until(lambda: not alive(pid))
        assert value(await pool.run(job(tmp_path, "add", a=2, b=2))) == 4
        assert pool.pids != [pid]

        # a job cancelled while still waiting for a worker never runs
        busy = asyncio.ensure_future(pool.run(job(tmp_path, "sleep", seconds=0.5)))
        await asyncio.sleep(0.05)
        waiting = asyncio.ensure_future(pool.run(job(tmp_path, "pid")))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert value(await busy) == 0.5
        assert value(await pool.run(job(tmp_path, "add", a=2, b=3))) == 5


# --- pool size --------------------------------------------------------------------------


async def test_resize_up_and_down(tmp_path: Path) -> None:
    folder = make_daisi(tmp_path, APP)
    async with open_pool(folder) as pool:
        for bad in (0, 65):
            with pytest.raises(ValueError):
                await pool.resize(bad)
        await pool.resize(3)
        assert pool.number == 3 and pool.status == "increasing"
        await pool.resize(3, wait=True)
        assert pool.status == "ready_to_update" and len(pool.pids) == 3

        started = time.monotonic()
        outs = await asyncio.gather(
            *(pool.run(job(tmp_path, "sleep", seconds=0.5)) for _ in range(3))
        )
        assert [value(o) for o in outs] == [0.5] * 3
        assert time.monotonic() - started < 1.2  # ran in parallel

        old = pool.pids
        await pool.resize(1)
        assert pool.status == "decreasing"
        await pool.resize(1, wait=True)
        assert pool.status == "ready_to_update" and len(pool.pids) == 1
        await wait_until(lambda: sum(alive(p) for p in old) == 1)

        # shrinking while busy: the busy worker retires when its job ends
        await pool.resize(2, wait=True)
        jobs = [
            asyncio.ensure_future(pool.run(job(tmp_path, "sleep", seconds=0.4))) for _ in range(2)
        ]
        await asyncio.sleep(0.1)
        await pool.resize(1)
        assert pool.status == "decreasing"
        await asyncio.gather(*jobs)
        await pool.resize(1, wait=True)
        assert len(pool.pids) == 1
        assert value(await pool.run(job(tmp_path, "add", a=1, b=2))) == 3


# --- importing the Daisi ----------------------------------------------------------------


async def test_import_error(tmp_path: Path) -> None:
    folder = make_daisi(
        tmp_path,
        """
        def fine():
            return 1

        raise RuntimeError("broken at import")

        if __name__ == "__main__":
            pass
    """,
    )
    pool = WorkerPool(
        name="d", directory=folder, entry="app.py", on_log=Logs(), min_workers=2, max_workers=2
    )
    pool.start()
    with pytest.raises(DaisiImportError) as info:
        await pool.warm()
    err = info.value.error
    assert err["type"] == "builtins.RuntimeError"
    assert err["message"] == "broken at import"
    assert str(folder / "app.py") in err["traceback"] and "workers/program" not in err["traceback"]
    with pytest.raises(DaisiImportError):
        await pool.run(job(tmp_path, "fine"))
    await pool.close()
    assert worker_children() == []

    syntax = make_daisi(tmp_path, "def broken(:\n    pass\n", name="syntax")
    pool = WorkerPool(name="s", directory=syntax, entry="app.py", on_log=Logs(), min_workers=1)
    pool.start()
    with pytest.raises(DaisiImportError) as info:
        await pool.warm()
    assert info.value.error["type"] == "builtins.SyntaxError"
    assert "app.py" in info.value.error["traceback"]
    await pool.close()


async def test_classes_travel_by_value(tmp_path: Path) -> None:
    folder = make_daisi(
        tmp_path,
        """
        import os
        from shapes import Point
        import helpers

        class Local:
            def __init__(self, x):
                self.x = x

        def local(x):
            return Local(x)

        def point(x, y):
            return Point(x, y)

        def where():
            return [os.getcwd(), helpers.GREETING]
        """,
        **{
            "shapes.py": """
                class Point:
                    def __init__(self, x, y):
                        self.x = x
                        self.y = y
                """,
            "helpers.py": "GREETING = 'hello from a sibling'\n",
        },
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    loader = (
        "import sys, dill; obj = dill.loads(sys.stdin.buffer.read()); "
        "print(type(obj).__name__, obj.x)"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    async with open_pool(folder) as pool:
        cwd, greeting = value(await pool.run(job(tmp_path, "where")))
        assert cwd == str(folder.resolve()) and greeting == "hello from a sibling"

        for endpoint, args, expected in (
            ("local", {"x": 7}, "Local 7"),
            ("point", {"x": 3, "y": 4}, "Point 3"),
        ):
            out = await pool.run(job(tmp_path, endpoint, **args))
            assert out.ok and out.result is not None
            done = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-c", loader],
                input=out.result,
                capture_output=True,
                cwd=elsewhere,
                env=env,
                timeout=30,
            )
            assert done.returncode == 0, done.stderr.decode()
            assert done.stdout.decode().strip() == expected

        # the sibling module is back in place after pickling
        assert value(await pool.run(job(tmp_path, "where")))[1] == "hello from a sibling"
        assert value(await pool.run(job(tmp_path, "point", x=1, y=2))).y == 2


# --- shutting down ----------------------------------------------------------------------


async def test_close_leaves_no_processes(tmp_path: Path) -> None:
    folder = make_daisi(tmp_path, APP)
    pool = WorkerPool(
        name="d", directory=folder, entry="app.py", on_log=Logs(), min_workers=3, max_workers=3
    )
    pool.start()
    await pool.warm()
    pids = pool.pids
    assert len(pids) == 3 and all(alive(p) for p in pids)
    running = asyncio.ensure_future(pool.run(job(tmp_path, "sleep", seconds=30)))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    await pool.close()
    assert time.monotonic() - started < 3
    out = await running
    assert out.error is not None and out.error["type"] == "daisi.WorkerStopped"
    for p in pids:
        assert file_size(f"/proc/{p}") is None  # exited and reaped
    assert worker_children() == []
    with pytest.raises(RuntimeError):
        await pool.run(job(tmp_path, "pid"))
