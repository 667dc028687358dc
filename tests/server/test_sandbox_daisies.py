"""Normal Daisies under the sandbox (``--isolation sandbox``), over HTTP: the examples
(numpy results), large results and arguments, chaining, live logs, cancel, time and
memory limits, workers coming and going, an environment of its own, secrets; and a
result smuggled out as a link. Skipped, with bubblewrap's reason, where it can't run.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np
from tests.support.isolation import needs_sandbox
from tests.support.sandbox_daisies import (
    ALICE,
    SECRET_VALUE,
    ids,
    probe,
    run,
    runtimes,
    sandboxed,
    secrets_file,
    tree,
    value,
)
from tests.support.wheels import toy_links, uv_cache

from daisi_async import Daisi
from daisi_async.testing import LocalRuntime

# fixtures, used by name
__all__ = ["runtimes", "sandboxed", "secrets_file", "toy_links", "tree", "uv_cache"]


@needs_sandbox
def test_scratch_space_is_private(sandboxed: LocalRuntime) -> None:
    seen = probe(sandboxed, "scratch")
    assert seen["home"] == "/run/daisi/home"
    assert seen["tmp"].startswith("/tmp/")
    assert not Path(seen["tmp"]).exists()  # not the server's /tmp
    assert seen["cwd"] == str((sandboxed.path / "prober").resolve())
    assert seen["data"] == "beside the code"
    # A fresh /proc of its own PID namespace: bwrap's init, the worker, nothing else.
    assert seen["processes"] == [1, 2]


@needs_sandbox
def test_a_result_smuggled_as_a_link_is_refused(
    sandboxed: LocalRuntime, secrets_file: Path
) -> None:
    ex = run(sandboxed, "prober", "smuggle", target=str(secrets_file))
    assert ex["status"] == "FAILED", ex
    assert ex["error"]["type"] == "daisi.ResultError"
    assert "not a regular file" in ex["error"]["message"]
    # A large result still travels; the refused one left nothing in the store.
    fine = run(sandboxed, "Echo", "blob", size=200_000)
    assert fine["status"] == "FINISHED" and fine["result"]["size"] > 200_000, fine
    stored = [p for p in (sandboxed.store / "blobs").iterdir() if p.is_symlink()]
    assert stored == []


# -- normal Daisies under the sandbox ------------------------------------------------------


@needs_sandbox
def test_examples_run_in_the_sandbox(sandboxed: LocalRuntime) -> None:
    with Daisi("Add Two Numbers", base_url=sandboxed.url) as d:
        assert d.compute(firstNumber=5, secondNumber=6).value == 11
    with Daisi("Titanic Statistics", base_url=sandboxed.url) as d:
        assert d.median(column="Age").value > 0  # reads titanic.csv beside the code
    with Daisi("Daisi Serialize", base_url=sandboxed.url) as d:
        stack = d.make_stack(nx=200, ny=200, layers=3).value
        grown = d.compute(map_stack=stack, map=np.random.rand(200, 200)).value
        assert grown.nb_layers == 4 and grown.maps[-1].shape == (200, 200)


@needs_sandbox
def test_large_values_and_chaining_in_the_sandbox(sandboxed: LocalRuntime) -> None:
    big = np.random.rand(300, 300)  # 720 kB: a file both ways
    with Daisi("Echo", base_url=sandboxed.url) as d:
        assert len(d.blob(size=100_000).value) == 100_000  # over the 64 KiB inline size
        assert np.array_equal(d.echo(big).value, big)
        first = d.echo_(big)
        second = d.echo_(first)  # the stored result, linked into the next worker's room
        assert np.array_equal(second.value, big)
    rooms = list((sandboxed.store / "sandbox").glob("*/in/*"))
    assert rooms == []  # the links are gone once the jobs ended


@needs_sandbox
def test_logs_are_live_in_the_sandbox(sandboxed: LocalRuntime) -> None:
    with Daisi("Echo", base_url=sandboxed.url) as d:
        ex = d.sleep_(seconds=3, lines=3)
        lines = []
        for line in ex.stream_logs():
            if not lines:
                assert ex.status == "RUNNING"  # the first line arrived before the end
            lines.append(line)
        assert lines == ["line 0", "line 1", "line 2"]
        assert ex.value == 3


@needs_sandbox
def test_cancel_and_limits_in_the_sandbox(sandboxed: LocalRuntime) -> None:
    rt = sandboxed
    with httpx.Client(base_url=rt.api, timeout=60, headers=ALICE) as client:
        body = {"endpoint": "nap", "arguments": {"seconds": {"value": 60}}}
        r = client.post(f"/v1/daisies/{ids(rt)['prober']}/executions", json=body)
        eid = r.json()["id"]
        deadline = time.monotonic() + 60
        while client.get(f"/v1/executions/{eid}").json()["status"] != "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        r = client.post(f"/v1/executions/{eid}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "CANCELLED", r.text
    late = run(rt, "Fuse", "nap", seconds=30)
    assert late["status"] == "FAILED" and late["error"]["type"] == "daisi.TimeLimitExceeded"
    hog = run(rt, "prober", "hog", megabytes=600)
    assert hog["status"] == "FAILED" and hog["error"]["type"] == "daisi.MemoryLimitExceeded"
    assert value(rt, "prober", "hog", megabytes=10, seconds=0) == 10 * 2**20


@needs_sandbox
def test_rooms_come_and_go_with_their_workers(sandboxed: LocalRuntime) -> None:
    rooms = sandboxed.store / "sandbox"

    def count() -> int:  # (the folder is made with the first room: maybe not yet)
        return sum(1 for _ in rooms.iterdir()) if rooms.exists() else 0

    before = count()
    with httpx.Client(base_url=sandboxed.api, timeout=60, headers=ALICE) as client:
        did = ids(sandboxed)["Brief"]
        body = {"endpoint": "nap", "arguments": {"seconds": {"value": 2}}}
        eids = [client.post(f"/v1/daisies/{did}/executions", json=body).json()["id"] for _ in "ab"]
        deadline = time.monotonic() + 60
        while count() < before + 2:  # the queue started a second worker, in a room of its own
            assert time.monotonic() < deadline, count()
            time.sleep(0.05)
        for eid in eids:
            r = client.get(f"/v1/executions/{eid}", params={"wait": 60})
            assert r.json()["status"] == "FINISHED", r.text
    deadline = time.monotonic() + 60
    while count() > before:  # idle for 1 s, both workers stop: their rooms go with them
        assert time.monotonic() < deadline, count()
        time.sleep(0.1)


@needs_sandbox
def test_a_daisi_with_its_own_environment_in_the_sandbox(sandboxed: LocalRuntime) -> None:
    assert value(sandboxed, "toy", "version") == "1.0"
    envs = sandboxed.store.resolve() / "envs"
    built = [p.name for p in envs.iterdir() if p.is_dir()]
    # It sees its own environment in the store, and nothing else of the store.
    assert value(sandboxed, "toy", "envs", folder=str(envs)) == built
    assert value(sandboxed, "toy", "envs", folder=str(sandboxed.store.resolve())) == ["envs"]
    assert value(sandboxed, "toy", "write_site_packages") == "OSError"


@needs_sandbox
def test_secrets_reach_their_daisi_in_the_sandbox(sandboxed: LocalRuntime) -> None:
    assert value(sandboxed, "sibling", "secret") == SECRET_VALUE
