"""The sandbox (``daisi serve --isolation sandbox``, bubblewrap): escapes, over HTTP.

Each escape is tried from a test Daisi ("prober", tests/support/sandbox_daisies.py) on
two runtimes serving the same tree: under ``--isolation sandbox`` it fails; under
``--isolation none`` it succeeds (or the harmless version of it does), which is what the
sandbox is for. The sandbox tests are skipped, with bubblewrap's reason, where it can't
run; ``--isolation sandbox`` then refuses to start and ``auto`` says it runs without.
tests/server/test_sandbox_daisies.py runs normal Daisies in the sandbox.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from tests.support.isolation import ISOLATIONS, needs_sandbox
from tests.support.sandbox_daisies import (
    BOB,
    SECRET_VALUE,
    TOKENS,
    ids,
    probe,
    runtimes,
    sandboxed,
    secrets_file,
    server_pid,
    tree,
    value,
)
from tests.support.wheels import toy_links, uv_cache

import daisi_async
from daisi_async.server.workers import proctree
from daisi_async.testing import LocalRuntime

# fixtures, used by name
__all__ = ["runtimes", "sandboxed", "secrets_file", "toy_links", "tree", "uv_cache"]

ARG_BYTES = 300_000  # over the 256 KiB that the store keeps in the database


# -- escapes -------------------------------------------------------------------------------


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_the_store_database(runtimes: dict[str, LocalRuntime], isolation: str) -> None:
    rt = runtimes[isolation]
    found = probe(rt, "read", path=str(rt.store.resolve() / "daisi.sqlite3"))
    if isolation == "sandbox":
        assert found == {"ok": False, "error": "FileNotFoundError"}
        assert probe(rt, "listdir", path=str(rt.store.resolve()))["ok"] is False
    else:
        assert found["ok"] and found["head"].startswith("SQLite format 3")


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_another_executions_argument_blob(
    runtimes: dict[str, LocalRuntime], isolation: str
) -> None:
    rt = runtimes[isolation]
    import dill

    data = dill.dumps(os.urandom(ARG_BYTES))
    r = httpx.post(rt.api + "/v1/blobs", content=data, headers=BOB, timeout=60)
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    blob_file = rt.store.resolve() / "blobs" / key
    assert blob_file.is_file()  # a large blob: a file in the store
    # Bob's execution reads it (a large argument reaches a sandboxed worker too).
    body = {"endpoint": "size", "arguments": {"data": {"blob": key}}}
    r = httpx.post(
        rt.api + f"/v1/daisies/{ids(rt)['prober']}/executions",
        params={"wait": 60},
        json=body,
        headers=BOB,
        timeout=120,
    )
    assert r.status_code == 201 and r.json()["status"] == "FINISHED", r.text
    assert r.json()["result"]["value"] == ARG_BYTES
    # Alice's call of the same Daisi tries to read Bob's argument from the store.
    found = probe(rt, "read", path=str(blob_file))
    if isolation == "sandbox":
        assert found == {"ok": False, "error": "FileNotFoundError"}
    else:
        assert found["ok"] and found["size"] == len(data)


@pytest.mark.parametrize("isolation", ISOLATIONS)
@pytest.mark.parametrize("which", ["tokens", "secrets"])
def test_the_tokens_and_secrets_files(
    runtimes: dict[str, LocalRuntime], secrets_file: Path, isolation: str, which: str
) -> None:
    rt = runtimes[isolation]
    path = rt.log_path.parent / "tokens.json" if which == "tokens" else secrets_file
    assert path.is_file()
    found = probe(rt, "read", path=str(path))
    if isolation == "sandbox":
        assert found == {"ok": False, "error": "FileNotFoundError"}
    else:
        assert found["ok"] and found["size"] == path.stat().st_size


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_sibling_daisis_folder(
    runtimes: dict[str, LocalRuntime], tree: Path, isolation: str
) -> None:
    rt = runtimes[isolation]
    listing = probe(rt, "listdir", path=str(tree))
    private = probe(rt, "read", path=str(tree / "sibling" / "private.txt"))
    if isolation == "sandbox":
        assert listing == {"ok": True, "names": ["prober"]}  # its own folder only
        assert private == {"ok": False, "error": "FileNotFoundError"}
        assert probe(rt, "listdir", path=str(tree / "sibling"))["ok"] is False
    else:
        assert {"prober", "sibling", "toy"} <= set(listing["names"])
        assert private["ok"] and private["head"] == "the sibling's pr"


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_signalling_the_server(runtimes: dict[str, LocalRuntime], isolation: str) -> None:
    rt = runtimes[isolation]
    pid = server_pid(rt)
    if isolation == "none":  # the harmless version: the server is there to be signalled
        assert probe(rt, "kill", pid=pid, sig=0) == {"ok": True}
        return
    try:
        assert probe(rt, "kill", pid=pid, sig=int(signal.SIGSTOP)) == {
            "ok": False,
            "error": "ProcessLookupError",
        }
        # Every process it can signal lives in its own namespace: the server and the
        # other workers survive a kill of "everything".
        echo = value(rt, "Echo", "echo", value=1)
        workers = proctree.descendants(pid)
        probe(rt, "kill", pid=-1, sig=int(signal.SIGKILL))
        assert value(rt, "Echo", "echo", value=2) == 2 == echo + 1
        assert all(proctree.read_proc(p.pid) is not None for p in workers)
    finally:
        os.kill(pid, signal.SIGCONT)  # had the sandbox failed, the server would be stopped


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_writing_into_its_own_folder(
    runtimes: dict[str, LocalRuntime], tree: Path, isolation: str
) -> None:
    rt = runtimes[isolation]
    target = tree / "prober" / f"planted-{isolation}.py"
    try:
        found = probe(rt, "write", path=str(target))
        if isolation == "sandbox":
            assert found == {"ok": False, "error": "OSError"}  # EROFS: read-only
            assert not target.exists()
            # Nor next to the other Daisies (here below /tmp: the write may land in the
            # worker's private /tmp, never in the served tree), nor into the server's Python.
            probe(rt, "write", path=str(tree / "planted.py"))
            assert not (tree / "planted.py").exists()
            prefix = probe(rt, "scratch")["prefix"]
            assert probe(rt, "write", path=f"{prefix}/planted.py")["ok"] is False
            assert not Path(prefix, "planted.py").exists()
        else:
            assert found == {"ok": True} and target.read_text() == "written by Daisi code"
    finally:
        target.unlink(missing_ok=True)


@needs_sandbox
def test_the_console_says_which_isolation(runtimes: dict[str, LocalRuntime]) -> None:
    sandbox_log = runtimes["sandbox"].logs()
    none_log = runtimes["none"].logs()
    assert "daisi runtime: isolation: sandbox (bubblewrap" in sandbox_log
    assert "daisi runtime: isolation: none (--isolation none)" in none_log
    assert SECRET_VALUE not in sandbox_log + none_log


# -- without bubblewrap ----------------------------------------------------------------------

PACKAGE_ROOT = str(Path(daisi_async.__file__).resolve().parent.parent)


def fake_path(tmp_path: Path, bwrap: str) -> tuple[str, str]:
    """A ``PATH`` where bwrap is missing or fails as it does without user namespaces, and
    the reason the runtime gives."""
    folder = tmp_path / "bin"
    folder.mkdir()
    if bwrap == "missing":
        return str(folder), "bubblewrap (bwrap) is not installed"
    fake = folder / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    return str(folder), "bwrap: No permissions to create new namespace"


@pytest.mark.parametrize("bwrap", ["missing", "broken"])
def test_isolation_sandbox_refuses_to_start_without_it(
    tree: Path, tmp_path: Path, bwrap: str
) -> None:
    path, reason = fake_path(tmp_path, bwrap)
    store = tmp_path / "store"
    cmd = [sys.executable, "-m", "daisi_async", "serve", str(tree), "--store", str(store)]
    done = subprocess.run(
        [*cmd, "--port", "0", "--isolation", "sandbox"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PATH": path, "PYTHONPATH": PACKAGE_ROOT},
    )
    assert done.returncode == 2, done.stderr
    assert f"daisi serve: --isolation sandbox: the sandbox can't run here: {reason}" in done.stderr
    assert not store.exists()  # refused before anything was created


@pytest.mark.parametrize("bwrap", ["missing", "broken"])
def test_isolation_auto_runs_without_it_and_says_so(tree: Path, tmp_path: Path, bwrap: str) -> None:
    path, reason = fake_path(tmp_path, bwrap)
    with LocalRuntime(tree, tokens=TOKENS, workers=0, env={"PATH": path}) as rt:
        assert (
            f"daisi runtime: warning: the sandbox can't run here ({reason}); isolation: none"
            in rt.logs()
        )
        assert probe(rt, "kill", pid=server_pid(rt), sig=0) == {"ok": True}  # not sandboxed
