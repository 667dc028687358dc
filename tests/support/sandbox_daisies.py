"""The served tree, runtimes and helpers of the sandbox tests (tests/server/test_sandbox*.py).

The tree holds the examples, Echo and the Daisies of these tests: "prober" (tries
escapes: reads, lists, signals, writes), "Fuse" (the prober with a 2 s limit), "Brief"
(the prober with two workers that stop after 1 s idle), "sibling" (alice's, private,
with a secret), "toy" (an environment of its own, from the offline toy wheels).
:func:`runtimes` starts one runtime per ``--isolation`` on first use.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.daisi_folders import make_daisi
from tests.support.isolation import sandbox_missing

from daisi_async.testing import LocalRuntime

__all__ = [
    "ALICE",
    "BOB",
    "SECRET_VALUE",
    "TOKENS",
    "build_tree",
    "ids",
    "probe",
    "run",
    "runtimes",
    "sandboxed",
    "secrets_file",
    "server_pid",
    "tree",
    "value",
]

REPO = Path(__file__).resolve().parents[2]
TOKENS = {"tok-alice": "alice", "tok-bob": "bob"}
ALICE = {"Authorization": "token tok-alice"}
BOB = {"Authorization": "token tok-bob"}
SECRET_VALUE = "s3cr3t-only-for-the-sibling"

PROBER = """
    import os
    import signal
    import sys
    import tempfile
    import time


    def _failure(exc):
        return {"ok": False, "error": type(exc).__name__}


    def read(path: str) -> dict:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            return _failure(exc)
        return {"ok": True, "size": len(data), "head": data[:16].decode("latin-1")}


    def listdir(path: str) -> dict:
        try:
            return {"ok": True, "names": sorted(os.listdir(path))}
        except OSError as exc:
            return _failure(exc)


    def kill(pid: int, sig: int) -> dict:
        try:
            os.kill(pid, sig)
        except OSError as exc:
            return _failure(exc)
        return {"ok": True}


    def write(path: str) -> dict:
        try:
            with open(path, "w") as f:
                f.write("written by Daisi code")
        except OSError as exc:
            return _failure(exc)
        return {"ok": True}


    def size(data: bytes) -> int:
        return len(data)


    def scratch() -> dict:
        home = os.path.expanduser("~")
        with open(os.path.join(home, "note.txt"), "w") as f:
            f.write("home")
        fd, tmp = tempfile.mkstemp()
        os.write(fd, b"tmp")
        os.close(fd)
        with open("data.txt") as f:  # relative to the Daisi's folder
            data = f.read()
        processes = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        return {"home": home, "tmp": tmp, "cwd": os.getcwd(), "data": data,
                "processes": processes, "prefix": sys.prefix}


    def smuggle(target: str, size: int = 200_000) -> bytes:
        # The worker program moves a large result into place with os.replace: make the
        # result a symbolic link to a host file instead.
        real = os.replace

        def swap(src, dst):
            real(src, dst)
            os.remove(dst)
            os.symlink(target, dst)
            os.replace = real

        os.replace = swap
        return bytes(size)


    def hog(megabytes: int = 600, seconds: float = 2.0) -> int:
        block = b"x" * (megabytes * 2**20)
        time.sleep(seconds)
        return len(block)


    def nap(seconds: float = 60.0) -> float:
        time.sleep(seconds)
        return seconds
"""

SIBLING = """
    import os


    def secret() -> str:
        return os.environ.get("SIBLING_KEY", "")
"""

TOY = """
    import os
    import sys

    import toypkg


    def version() -> str:
        return toypkg.VERSION


    def envs(folder: str) -> list:
        return sorted(os.listdir(folder))


    def write_site_packages() -> str:
        import site

        try:
            with open(os.path.join(site.getsitepackages()[0], "planted.py"), "w") as f:
                f.write("x = 1")
        except OSError as exc:
            return type(exc).__name__
        return "written"
"""


def build_tree(root: Path) -> Path:
    """The examples, Echo, and the Daisies of these tests, in one served folder."""
    for example in (REPO / "examples" / "daisies").iterdir():
        shutil.copytree(example, root / example.name)
    shutil.copytree(REPO / "tests" / "daisies" / "echo", root / "echo")
    make_daisi(root, "prober", {"app.py": PROBER, "data.txt": "beside the code"})
    make_daisi(root, "fuse", {"app.py": PROBER, "daisi.toml": 'name = "Fuse"\ntimeout = 2\n'})
    make_daisi(
        root,
        "sibling",
        {
            "app.py": SIBLING,
            "private.txt": "the sibling's private file",
            "daisi.toml": 'owner = "alice"\npublic = false\n',
        },
    )
    make_daisi(root, "toy", {"app.py": TOY, "requirements.txt": "toypkg==1.0\n"})
    make_daisi(
        root,
        "brief",
        {"app.py": PROBER, "daisi.toml": 'name = "Brief"\nmax_workers = 2\nidle_timeout = 1\n'},
    )
    return root


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tree(tmp_path_factory.mktemp("sandbox-tree"))


@pytest.fixture(scope="module")
def secrets_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secrets") / "secrets.toml"
    path.write_text(f'["alice/sibling"]\nSIBLING_KEY = "{SECRET_VALUE}"\n')
    return path


def _start(
    tree: Path, isolation: str, secrets_file: Path, toy_links: Path, uv_cache: dict[str, str]
) -> LocalRuntime:
    args = ["--isolation", isolation, "--secrets", str(secrets_file), "--memory-limit", "300MB"]
    args += ["--find-links", str(toy_links), "--offline", "--max-workers", "2"]
    return LocalRuntime(tree, tokens=TOKENS, extra_args=args, env=uv_cache, workers=0).start()


@pytest.fixture(scope="module")
def runtimes(
    tree: Path, secrets_file: Path, toy_links: Path, uv_cache: dict[str, str]
) -> Iterator[dict[str, LocalRuntime]]:
    """A runtime per isolation, started on first use."""
    started: dict[str, LocalRuntime] = {}

    class Lazy(dict[str, LocalRuntime]):
        def __missing__(self, isolation: str) -> LocalRuntime:
            rt = _start(tree, isolation, secrets_file, toy_links, uv_cache)
            started[isolation] = self[isolation] = rt
            return rt

    yield Lazy()
    for rt in started.values():
        rt.close()


@pytest.fixture
def sandboxed(runtimes: dict[str, LocalRuntime]) -> LocalRuntime:
    reason = sandbox_missing()
    if reason is not None:
        pytest.skip(f"bubblewrap can't sandbox workers here: {reason}")
    return runtimes["sandbox"]


def ids(rt: LocalRuntime) -> dict[str, str]:
    r = httpx.get(rt.api + "/v1/daisies", headers=ALICE, timeout=60)
    assert r.status_code == 200, r.text
    return {d["name"]: d["id"] for d in r.json()["daisies"]}


def run(rt: LocalRuntime, daisi: str, endpoint: str, **args: Any) -> dict[str, Any]:
    """One execution of ``daisi`` (as alice) to its end."""
    arguments = {
        k: v if isinstance(v, dict) and "blob" in v else {"value": v} for k, v in args.items()
    }
    body = {"endpoint": endpoint, "arguments": arguments}
    with httpx.Client(base_url=rt.api, timeout=120, headers=ALICE) as client:
        r = client.post(f"/v1/daisies/{ids(rt)[daisi]}/executions", json=body)
        assert r.status_code == 201, r.text
        eid = r.json()["id"]
        deadline = time.monotonic() + 180
        while True:
            r = client.get(f"/v1/executions/{eid}", params={"wait": 30})
            assert r.status_code == 200, r.text
            execution: dict[str, Any] = r.json()
            if execution["status"] in ("FINISHED", "FAILED", "CANCELLED"):
                return execution
            assert time.monotonic() < deadline, execution


def value(rt: LocalRuntime, daisi: str, endpoint: str, **args: Any) -> Any:
    execution = run(rt, daisi, endpoint, **args)
    assert execution["status"] == "FINISHED", execution
    return execution["result"]["value"]


def probe(rt: LocalRuntime, endpoint: str, **args: Any) -> dict[str, Any]:
    result: dict[str, Any] = value(rt, "prober", endpoint, **args)
    return result


def server_pid(rt: LocalRuntime) -> int:
    assert rt.process is not None
    return rt.process.pid
