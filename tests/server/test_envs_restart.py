"""Environments across restarts: reused when built, rebuilt when a build did not finish;
calls made while an environment builds wait QUEUED, across a crash of the server.

A build is held open by a real package index on loopback whose find-links page answers
only when the test says so.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.server.test_envs import PLAIN_APP, TOY_APP, call, value, wait_built
from tests.support.daisi_folders import make_daisi
from tests.support.wheels import toy_links, uv_cache

from daisi_async.testing import LocalRuntime

__all__ = ["toy_links", "uv_cache"]  # session fixtures, used by name


def daisies_by_name(client: httpx.Client) -> dict[str, dict[str, Any]]:
    r = client.get("/v1/daisies")
    assert r.status_code == 200, r.text
    return {d["name"]: d for d in r.json()["daisies"]}


def only_env(store: Path) -> Path:
    [env] = list((store / "envs").iterdir())
    return env


def test_a_restart_reuses_the_environment_and_an_unfinished_one_is_rebuilt(
    tmp_path: Path, toy_links: Path, uv_cache: dict[str, str]
) -> None:
    make_daisi(
        tmp_path / "daisies", "toy-one", {"app.py": TOY_APP, "requirements.txt": "toypkg==1.0"}
    )
    rt = LocalRuntime(
        tmp_path / "daisies",
        store=tmp_path / "store",
        extra_args=["--find-links", str(toy_links), "--offline"],
        env=uv_cache,
    )
    try:
        started = time.monotonic()
        rt.start()
        with httpx.Client(base_url=rt.api, timeout=60) as client:
            wait_built(client)
            toy = daisies_by_name(client)["toy-one"]["id"]
            assert value(client, toy, "version") == "1.0"
            fresh = time.monotonic() - started
            assert rt.logs().count("building the environment") == 1
            env = only_env(rt.store)
            log_before = (env / "build.log").stat().st_mtime_ns
            assert (env / ".daisi-env-complete").is_file()

            rt.stop()
            console = len(rt.logs())
            started = time.monotonic()
            rt.start()
            # No build: the installer did not run for it (its workers may still start).
            assert daisies_by_name(client)["toy-one"]["state"] in ("starting", "ready")
            assert value(client, toy, "version") == "1.0"
            cached = time.monotonic() - started
            assert "building the environment" not in rt.logs()[console:]
            assert (env / "build.log").stat().st_mtime_ns == log_before
            assert only_env(rt.store) == env
            assert cached < 60 and fresh < 120, (cached, fresh)  # sanity bounds only

            # A build that did not finish (no marker: a crash mid-build) is done again.
            rt.stop()
            (env / ".daisi-env-complete").unlink()
            (env / "lib").rename(env / "lib-half")  # and what it installed is half there
            console = len(rt.logs())
            rt.start()
            wait_built(client)
            assert value(client, toy, "version") == "1.0"
            assert "building the environment" in rt.logs()[console:]
            assert (env / ".daisi-env-complete").is_file()
            assert not (env / "lib-half").exists()
    finally:
        rt.close()


class GatedIndex:
    """A package index on loopback: ``/simple/...`` knows nothing (404); ``/links/`` lists
    the toy wheels once :attr:`gate` is set, and serves them."""

    def __init__(self, wheels: Path) -> None:
        self.wheels = wheels
        self.gate = threading.Event()
        self.asked = threading.Event()
        index = self

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self) -> None:
                self.do_GET(head=True)

            def do_GET(self, head: bool = False) -> None:
                self.head = head
                if self.path.rstrip("/") == "/links":
                    index.asked.set()
                    index.gate.wait(300)
                    names = sorted(p.name for p in index.wheels.glob("*.whl"))
                    body = "".join(f'<a href="{n}">{n}</a>\n' for n in names).encode()
                    self._send(200, body, "text/html")
                elif self.path.startswith("/links/") and (index.wheels / self.path[7:]).is_file():
                    data = (index.wheels / self.path[7:]).read_bytes()
                    self._send(200, data, "application/octet-stream")
                else:
                    self._send(404, b"not found", "text/plain")

            def _send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not self.head:
                    with contextlib.suppress(OSError):  # a killed installer hung up
                        self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def index(toy_links: Path) -> Iterator[GatedIndex]:
    gated = GatedIndex(toy_links)
    yield gated
    gated.close()


def installers_of(store: Path) -> dict[int, bytes]:
    """The installers building in ``store``: their pids and command lines."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if str(store).encode() in cmdline and b"pip\0install" in cmdline:
            found[int(entry)] = cmdline
    return found


def wait_installers(store: Path, count: int) -> dict[int, bytes]:
    """Wait until exactly ``count`` installers build in ``store`` (generous deadline)."""
    deadline = time.monotonic() + 120
    while len(found := installers_of(store)) != count:
        assert time.monotonic() < deadline, f"{len(found)} installers, not {count}"
        time.sleep(0.05)
    return found


def build_states(client: httpx.Client, daisies: dict[str, dict[str, Any]]) -> list[str]:
    states = []
    for name in ("toy-gated", "toy-b", "toy-c"):
        r = client.get(f"/v1/daisies/{daisies[name]['id']}/build")
        assert r.status_code == 200, r.text
        states.append(r.json()["state"])
    return sorted(states)


def test_calls_wait_queued_while_building_even_across_a_crash(
    tmp_path: Path, index: GatedIndex, uv_cache: dict[str, str]
) -> None:
    root = tmp_path / "daisies"
    make_daisi(root, "toy-gated", {"app.py": TOY_APP, "requirements.txt": "toypkg==1.0"})
    make_daisi(root, "toy-b", {"app.py": TOY_APP, "requirements.txt": "toypkg==2.0"})
    make_daisi(root, "toy-c", {"app.py": TOY_APP, "requirements.txt": "toypkg<3"})
    make_daisi(root, "plain", {"app.py": PLAIN_APP})
    secret = "s3cret-pass"
    args = [
        "--index-url", f"http://user:{secret}@127.0.0.1:{index.port}/simple",
        "--find-links", f"http://127.0.0.1:{index.port}/links/",
    ]  # fmt: skip
    rt = LocalRuntime(
        root, store=tmp_path / "store", extra_args=args, env={**uv_cache, "UV_HTTP_TIMEOUT": "300"}
    )
    try:
        rt.start()
        assert index.asked.wait(120), rt.logs()
        with httpx.Client(base_url=rt.api, timeout=60) as client:
            daisies = daisies_by_name(client)
            toy, plain = daisies["toy-gated"], daisies["plain"]
            assert toy["state"] == "building" and plain["state"] in ("starting", "ready")
            # Two builds at once; the third waits for a slot.
            installers = wait_installers(rt.store, 2)
            assert build_states(client, daisies) == ["building", "building", "queued"]
            assert {daisies[n]["state"] for n in ("toy-gated", "toy-b", "toy-c")} == {"building"}
            assert not any(secret.encode() in cmdline for cmdline in installers.values())
            r = client.post(
                f"/v1/daisies/{toy['id']}/executions", json={"endpoint": "version", "arguments": {}}
            )
            assert r.status_code == 201, r.text
            queued = r.json()["id"]
            assert r.json()["status"] == "QUEUED"
            # A call cancelled while it waits ends at once; the build goes on.
            r = client.post(
                f"/v1/daisies/{toy['id']}/executions", json={"endpoint": "version", "arguments": {}}
            )
            assert r.status_code == 201, r.text
            r = client.post(f"/v1/executions/{r.json()['id']}/cancel")
            assert r.status_code == 200 and r.json()["status"] == "CANCELLED", r.text
            # Another Daisi is not held up by the build.
            assert value(client, plain["id"], "where")
            # Its workers wait for the build (they start once it is done).
            r = client.get(f"/v1/daisies/{toy['id']}/workers")
            assert r.status_code == 200 and r.json()["status"] == "increasing", r.text
            assert client.get(f"/v1/daisies/{toy['id']}").json()["state"] == "building"
            logs = [client.get(f"/v1/daisies/{d['id']}/build") for d in daisies.values()]
            building = [r.text for r in logs if r.json()["state"] == "building"]
            assert len(building) == 2, building
            assert all(secret not in t and "index http://****@127.0.0.1" in t for t in building)
            assert client.get(f"/v1/executions/{queued}").json()["status"] == "QUEUED"

            # The server dies mid-build: its installer dies with it; the call stays queued.
            assert installers_of(rt.store)
            rt.kill()
            deadline = time.monotonic() + 30
            while installers_of(rt.store):
                assert time.monotonic() < deadline, "the installer outlived the server"
                time.sleep(0.05)
            index.asked.clear()
            console = len(rt.logs())
            rt.start()
            assert index.asked.wait(120), rt.logs()
            assert "building the environment" in rt.logs()[console:]
            assert daisies_by_name(client)["toy-gated"]["state"] == "building"
            assert client.get(f"/v1/executions/{queued}").json()["status"] == "QUEUED"
            wait_installers(rt.store, 2)

            index.gate.set()
            r = client.get(f"/v1/executions/{queued}", params={"wait": 120})
            assert r.status_code == 200, r.text
            done = r.json()
            assert done["status"] == "FINISHED", (done, rt.logs())
            assert done["result"]["value"] == "1.0"
            wait_built(client)
            assert daisies_by_name(client)["toy-gated"]["state"] in ("starting", "ready")
            assert call(client, toy["id"], "version")["result"]["value"] == "1.0"
            assert value(client, daisies["toy-b"]["id"], "version") == "2.0"
            assert value(client, daisies["toy-c"]["id"], "version") == "2.0"
        assert secret not in rt.logs()
        for env in (rt.store / "envs").iterdir():
            assert secret not in (env / "build.log").read_text()
    finally:
        rt.close()
