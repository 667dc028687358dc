"""Store integrity against a real runtime process: nothing acknowledged is ever lost.

* one Daisi's odd output (text that UTF-8 can't hold) never rolls back another's writes;
* a second server on the same store is refused at once, naming the holder;
* a failing disk (``RLIMIT_FSIZE`` on the server process, or a real full filesystem)
  answers 503/507 at once, loses nothing acknowledged, and service resumes by itself.

Each test checks that what a client saw never moves backwards, even after a SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from daisi_async.testing import LocalRuntime

TEST_DAISIES = Path(__file__).resolve().parents[1] / "daisies"


def values(**kwargs: Any) -> dict[str, dict[str, Any]]:
    return {k: {"value": v} for k, v in kwargs.items()}


def daisi_id(c: httpx.Client, name: str) -> str:
    daisies = c.get("/v1/daisies").json()["daisies"]
    return str(next(d["id"] for d in daisies if d["name"] == name))


def submit(c: httpx.Client, did: str, endpoint: str, **kwargs: Any) -> httpx.Response:
    return c.post(
        f"/v1/daisies/{did}/executions", json={"endpoint": endpoint, "arguments": values(**kwargs)}
    )


def wait(c: httpx.Client, eid: str, timeout: float = 30) -> dict[str, Any]:
    r = c.get(f"/v1/executions/{eid}", params={"wait": timeout})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def on_disk(rt: LocalRuntime) -> dict[str, str]:
    """Execution id -> status, as the database file holds them."""
    db = sqlite3.connect(f"file:{rt.store / 'daisi.sqlite3'}?mode=ro", uri=True)
    try:
        return dict(db.execute("SELECT id, status FROM executions").fetchall())
    finally:
        db.close()


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[LocalRuntime]:
    with LocalRuntime(TEST_DAISIES, store=tmp_path / "store") as rt:
        yield rt


@pytest.fixture
def client(runtime: LocalRuntime) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=runtime.api, timeout=60) as c:
        yield c


# -- one Daisi's output can't hurt another's writes ------------------------------------


def test_odd_log_line_is_stored_escaped_and_others_are_durable(
    runtime: LocalRuntime, client: httpx.Client
) -> None:
    did = daisi_id(client, "integrity")
    echo = daisi_id(client, "Echo")
    # Interleave odd output with other users' work, so that their writes share commits.
    batch = []
    for i in range(20):
        batch.append({"daisi_id": did, "endpoint": "odd_name", "arguments": values(delay=0.01)})
        batch.append({"daisi_id": echo, "endpoint": "echo", "arguments": values(value=i)})
    r = client.post("/v1/executions", json={"executions": batch})
    assert r.status_code == 200, r.text
    ids = [item["execution"]["id"] for item in r.json()["results"]]
    seen = {eid: wait(client, eid) for eid in ids}
    assert all(body["status"] == "FINISHED" for body in seen.values()), seen

    odd = ids[0]
    lines = client.get(f"/v1/executions/{odd}/logs").json()["lines"]
    assert [e["line"] for e in lines] == ["caf\\udce9.txt"]  # escaped, not dropped
    # The event stream of the odd execution ends (it used to hang on a status never stored).
    with client.stream("GET", f"/v1/executions/{odd}/events", timeout=10) as stream:
        text = "".join(stream.iter_text())
    assert "caf\\\\udce9.txt" in text and '"status":"FINISHED"' in text

    # What the clients saw is on disk: a crash takes nothing back.
    disk = on_disk(runtime)
    assert all(disk[eid] == "FINISHED" for eid in ids)
    runtime.restart(kill=True)
    for i, eid in enumerate(ids):
        body = client.get(f"/v1/executions/{eid}", params={"result": 1}).json()
        assert body["status"] == "FINISHED", body
        if i % 2:
            assert body["result"]["value"] == i // 2


def test_odd_error_message_is_retrievable(client: httpx.Client) -> None:
    did = daisi_id(client, "integrity")
    eid = submit(client, did, "odd_error").json()["id"]
    body = wait(client, eid)
    assert body["status"] == "FAILED"
    assert body["error"]["message"] == "bad \\udcff byte"
    legacy = client.get(f"/pebbles/{did}/executions/{eid}/results", params={"download": "false"})
    assert legacy.status_code == 200, legacy.text
    assert "ValueError: bad \\udcff byte" in json.loads(legacy.json()["results"])["data"]
    # and the Daisi still runs
    assert wait(client, submit(client, did, "slow", seconds=0).json()["id"])["status"] == "FINISHED"


# -- one server per store ----------------------------------------------------------------


def test_second_server_on_the_same_store_is_refused(
    runtime: LocalRuntime, client: httpx.Client
) -> None:
    did = daisi_id(client, "integrity")
    running = submit(client, did, "slow", seconds=2).json()["id"]
    second = LocalRuntime(TEST_DAISIES, store=runtime.store, startup_timeout=30)
    started = time.monotonic()
    with pytest.raises(RuntimeError) as info:
        second.start()
    second.close()
    assert time.monotonic() - started < 20  # refused at once, not after loading Daisies
    message = str(info.value)
    assert f"the store {runtime.store.resolve()} is in use" in message
    assert runtime.process is not None and f"pid {runtime.process.pid}" in message
    # The first server's work is untouched and still moves forward only.
    assert wait(client, running)["status"] == "FINISHED"
    assert on_disk(runtime)[running] == "FINISHED"

    # A killed holder leaves no stale lock behind.
    runtime.kill()
    with LocalRuntime(TEST_DAISIES, store=runtime.store) as third:
        r = httpx.get(f"{third.api}/v1/executions/{running}", timeout=30)
        assert r.json()["status"] == "FINISHED"


# -- a failing disk -------------------------------------------------------------------------


def set_fsize(pid: int, limit: int) -> None:
    """Limit the size of the files the process may write (RLIM_INFINITY lifts it)."""
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))


def test_failing_writes_answer_at_once_and_service_resumes(
    runtime: LocalRuntime, client: httpx.Client
) -> None:
    did = daisi_id(client, "integrity")
    before = wait(client, submit(client, did, "slow", seconds=0).json()["id"])
    slow = submit(client, did, "slow", seconds=1.5, lines=2).json()["id"]
    assert runtime.process is not None
    pid = runtime.process.pid
    set_fsize(pid, 1)  # every write past the first byte of any file now fails
    try:
        t0 = time.monotonic()
        r = submit(client, did, "slow", seconds=0)
        assert time.monotonic() - t0 < 5
        assert r.status_code in (503, 507), r.text
        assert r.json()["error"]["code"] in ("storage_error", "storage_full")
        assert r.headers.get("retry-after")
        upload = client.post("/v1/blobs", content=b"x" * 1_000_000)
        assert upload.status_code in (503, 507), upload.text

        # A waiter on a run that ends now is told at once, not held for its 30 s.
        t0 = time.monotonic()
        r = client.get(f"/v1/executions/{slow}", params={"wait": 30})
        assert time.monotonic() - t0 < 15
        assert r.status_code in (503, 507) or r.json()["status"] == "RUNNING", r.text
        # What is shown is what is durable: the end is not reported before it is stored.
        assert client.get(f"/v1/executions/{slow}").json()["status"] in ("QUEUED", "RUNNING")
    finally:
        set_fsize(pid, resource.RLIM_INFINITY)

    # Service resumes by itself; the kept progress of the accepted run lands.
    body = wait(client, slow)
    assert body["status"] == "FINISHED", body
    lines = client.get(f"/v1/executions/{slow}/logs").json()["lines"]
    assert [e["line"] for e in lines] == ["line 0", "line 1"]
    after = submit(client, did, "slow", seconds=0)
    assert after.status_code == 201 and wait(client, after.json()["id"])["status"] == "FINISHED"

    # Refused work was not created behind the client's back; acknowledged work survives.
    runtime.restart(kill=True)
    disk = on_disk(runtime)
    assert set(disk) == {before["id"], slow, after.json()["id"]}
    assert set(disk.values()) == {"FINISHED"}


@contextlib.contextmanager
def tiny_filesystem(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"can't mount a small filesystem here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path) -> Path:
    """Fill the filesystem of ``folder`` to the last byte; returns the filler file."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as fh:
        for chunk in (b"\0" * 65536, b"\0" * 512, b"\0"):
            with contextlib.suppress(OSError):
                while fh.write(chunk):
                    pass
    return filler


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small filesystem needs root")
def test_full_disk_answers_507_and_resumes_when_space_is_back(tmp_path: Path) -> None:
    with tiny_filesystem(tmp_path / "small", "8m") as small:
        store = small / "store"
        with (
            LocalRuntime(TEST_DAISIES, store=store) as rt,
            httpx.Client(base_url=rt.api, timeout=60) as c,
        ):
            did = daisi_id(c, "integrity")
            first = wait(c, submit(c, did, "slow", seconds=0).json()["id"])
            filler = fill(small)
            r = c.post("/v1/blobs", content=b"x" * 1_000_000)
            assert r.status_code == 507, r.text
            assert r.json()["error"]["code"] == "storage_full"
            refused = [submit(c, did, "slow", seconds=0) for _ in range(20)]
            assert any(x.status_code == 507 for x in refused), [x.text for x in refused]
            assert all(x.status_code in (201, 507) for x in refused)
            accepted = [x.json()["id"] for x in refused if x.status_code == 201]

            filler.unlink()  # space is back
            for eid in accepted:
                end = wait(c, eid)
                assert end["status"] == "FINISHED", end
            again = submit(c, did, "slow", seconds=0)
            assert again.status_code == 201
            end = wait(c, again.json()["id"])
            assert end["status"] == "FINISHED", end
            rt.restart(kill=True)
            disk = on_disk(rt)
            assert set(disk) == {first["id"], again.json()["id"], *accepted}
            assert set(disk.values()) == {"FINISHED"}
