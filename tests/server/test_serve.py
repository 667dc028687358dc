"""``daisi serve`` under hostile connections and at startup, over real sockets.

Slow-loris: connections that never finish their request headers are answered 408 and
closed after ``--header-timeout`` seconds, while normal requests are served meanwhile;
past ``--limit-concurrency`` open connections a request gets 503 at once. Startup:
pools never start above ``--max-workers``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import click
import httpx
import pytest
from tests.server.conftest import EXAMPLES

from daisi_async.cli.serve import settings_of
from daisi_async.testing import LocalRuntime

HEADER_TIMEOUT = 2.0
"""Short, so the tests are quick; the bounds asserted below are far above it."""

PARSERS = [
    "h11",
    pytest.param(
        "httptools",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("httptools") is None, reason="httptools is not installed"
        ),
    ),
]


@pytest.fixture(scope="module", params=PARSERS)
def runtime(request: pytest.FixtureRequest) -> Iterator[LocalRuntime]:
    args = ["--header-timeout", str(HEADER_TIMEOUT), "--http", request.param]
    with LocalRuntime(EXAMPLES, extra_args=args) as rt:
        yield rt


REQUEST_LINE = b"GET /pebble-api/capabilities HTTP/1.1\r\n"


async def _hold(port: int, kind: str, until: float) -> tuple[float, bytes]:
    """Open a connection that never completes its headers; (seconds until closed, reply)."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if kind == "partial":
            writer.write(REQUEST_LINE + b"Host: x\r\n")
        elif kind == "drip":
            # Headers one byte at a time, never ending: the deadline runs from the
            # first byte, not the last.
            async def drip() -> None:
                header = REQUEST_LINE + b"X-Slow: " + b"a" * 10_000
                for i in range(len(header)):
                    writer.write(header[i : i + 1])
                    await asyncio.sleep(0.25)

            task = asyncio.create_task(drip())
        reply = b""
        while time.monotonic() < until:
            try:
                chunk = await asyncio.wait_for(reader.read(4096), until - time.monotonic())
            except (ConnectionError, TimeoutError):
                break
            if not chunk:
                break
            reply += chunk
        elapsed = time.monotonic() - started
        if kind == "drip":
            task.cancel()
        return elapsed, reply
    finally:
        writer.close()


def test_slow_connections_are_closed_and_others_still_served(runtime: LocalRuntime) -> None:
    bound = 30.0  # far above HEADER_TIMEOUT: a loaded machine is slow, not wrong

    async def main() -> tuple[list[tuple[float, bytes]], list[float]]:
        until = time.monotonic() + bound
        holders = [
            asyncio.create_task(_hold(runtime.port, kind, until))
            for kind in ("idle", "partial", "drip")
            for _ in range(100)
        ]
        await asyncio.sleep(0.5)
        served: list[float] = []
        async with httpx.AsyncClient(base_url=runtime.api, timeout=bound) as client:
            for _ in range(3):
                t0 = time.monotonic()
                r = await client.get("/capabilities")
                assert r.status_code == 200, r.text
                served.append(time.monotonic() - t0)
        return list(await asyncio.gather(*holders)), served

    results, served = asyncio.run(main())
    assert max(served) < bound
    for kind, chunk in (("idle", results[:100]), ("partial", results[100:200])):
        for elapsed, reply in chunk:
            assert elapsed < bound, f"an {kind} connection was held {elapsed:.1f} s"
            assert elapsed > HEADER_TIMEOUT * 0.8, (kind, elapsed)
            assert reply.startswith(b"HTTP/1.1 408 "), (kind, reply[:200])
            assert b'"code":"request_timeout"' in reply
    for elapsed, _reply in results[200:]:
        assert HEADER_TIMEOUT * 0.8 < elapsed < bound, ("drip", elapsed)
    assert "unexpected error" not in runtime.logs()


def test_kept_alive_connection_is_timed_on_its_next_request(runtime: LocalRuntime) -> None:
    async def main() -> tuple[bytes, float, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", runtime.port)
        writer.write(REQUEST_LINE + b"Host: x\r\n\r\n")
        first = await asyncio.wait_for(reader.readuntil(b"}}"), 30)
        # Idle after a response: the keep-alive timer governs (30 s), not the header one.
        await asyncio.sleep(HEADER_TIMEOUT * 1.5)
        writer.write(REQUEST_LINE)  # ... then a request that never completes
        t0 = time.monotonic()
        rest = await asyncio.wait_for(reader.read(), 30)
        writer.close()
        return first, time.monotonic() - t0, rest

    first, elapsed, rest = asyncio.run(main())
    assert first.startswith(b"HTTP/1.1 200 ")
    assert rest.startswith(b"HTTP/1.1 408 ")
    assert HEADER_TIMEOUT * 0.8 < elapsed < 30


def test_a_slow_body_is_not_cut_by_the_header_timeout(runtime: LocalRuntime) -> None:
    body = b"0123456789"

    async def main() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", runtime.port)
        writer.write(
            b"POST /pebble-api/v1/blobs HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/octet-stream\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        for i in range(len(body)):  # the body takes longer than the header timeout
            writer.write(body[i : i + 1])
            await asyncio.sleep(HEADER_TIMEOUT / 4)
        reply = await asyncio.wait_for(reader.readuntil(b"}"), 30)
        writer.close()
        return reply

    reply = asyncio.run(main())
    assert reply.startswith(b"HTTP/1.1 201 "), reply
    assert b'"size":10' in reply


def test_requests_past_the_connection_limit_get_503() -> None:
    args = ["--limit-concurrency", "20", "--header-timeout", "60"]
    with LocalRuntime(EXAMPLES, extra_args=args) as rt:

        async def main() -> tuple[list[int], int]:
            held = [await asyncio.open_connection("127.0.0.1", rt.port) for _ in range(25)]
            await asyncio.sleep(0.5)
            statuses = []
            async with httpx.AsyncClient(base_url=rt.api, timeout=30) as client:
                for _ in range(3):
                    r = await client.get("/capabilities")
                    statuses.append(r.status_code)
                for _, writer in held:
                    writer.close()
                deadline = time.monotonic() + 30
                while True:  # the server sees the closes soon; then all is well again
                    r = await client.get("/capabilities")
                    if r.status_code == 200 or time.monotonic() > deadline:
                        return statuses, r.status_code
                    await asyncio.sleep(0.1)

        statuses, after = asyncio.run(main())
        assert statuses == [503, 503, 503]
        assert after == 200


def test_a_thousand_connections_fit_by_default() -> None:
    """The default limit leaves room for 1,000 open streams and more (it was 1,000: the
    1,001st connection got 503)."""
    with LocalRuntime(EXAMPLES, extra_args=["--header-timeout", "60"]) as rt:

        async def main() -> int:
            held = [await asyncio.open_connection("127.0.0.1", rt.port) for _ in range(1100)]
            try:
                await asyncio.sleep(0.5)
                async with httpx.AsyncClient(base_url=rt.api, timeout=30) as client:
                    return (await client.get("/capabilities")).status_code
            finally:
                for _, writer in held:
                    writer.close()

        assert asyncio.run(main()) == 200


def test_the_open_files_limit_is_raised_to_fit_the_connections() -> None:
    resource = pytest.importorskip("resource")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    code = textwrap.dedent(
        """
        import resource
        from daisi_async.server.serve import descriptors_for
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        print(descriptors_for(1000), resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    said, now = map(int, out.stdout.split())
    expected = 1000 + 512 if hard == resource.RLIM_INFINITY else min(1000 + 512, hard)
    assert said == now == expected


# -- options and startup --------------------------------------------------------------------


def test_serve_options_and_defaults() -> None:
    settings = settings_of(["."])
    server = settings.server
    assert (
        server["header_timeout"],
        server["limit_concurrency"],
        server["http"],
        server["loop"],
    ) == (5.0, 4096, "auto", "auto")
    assert settings.config.max_workers == min(os.cpu_count() or 1, 64)  # the cores
    assert settings_of([".", "--max-workers", "3"]).config.max_workers == 3
    for bad in (
        ["--header-timeout", "0"],
        ["--header-timeout", "nan"],
        ["--header-timeout", "inf"],
        ["--limit-concurrency", "0"],
        ["--max-workers", "0"],
        ["--max-workers", "two"],
        ["--http", "h2"],
        ["--loop", "trio"],
    ):
        with pytest.raises(click.BadParameter):
            settings_of([".", *bad])


def _installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


@pytest.mark.parametrize(
    ("args", "parser", "loop"),
    [
        pytest.param(
            [],
            "httptools" if _installed("httptools") else "h11",
            "uvloop" if _installed("uvloop") else "asyncio",
            id="auto",
        ),
        pytest.param(["--loop", "asyncio", "--http", "h11"], "h11", "asyncio", id="plain"),
    ],
)
def test_the_server_runs_on_httptools_and_uvloop_when_installed(
    args: list[str], parser: str, loop: str
) -> None:
    with (
        LocalRuntime(EXAMPLES, workers=1, extra_args=args) as rt,
        httpx.Client(base_url=rt.api, timeout=60) as c,
    ):
        did = c.get("/v1/daisies/Add Two Numbers").json()["id"]
        body = {
            "endpoint": "compute",
            "arguments": {"firstNumber": {"value": 1}, "secondNumber": {"value": 2}},
        }
        r = c.post(f"/v1/daisies/{did}/executions", params={"wait": 30}, json=body)
        assert r.json()["result"]["value"] == 3
        logs = rt.logs()
    assert f"  server     uvicorn, {parser} parser, {loop} event loop\n" in logs, logs


@pytest.mark.parametrize(
    ("workers", "extra", "message"),
    [
        (3, ["--max-workers", "2"], "--workers 3 is over the cap of 2"),
        (1, ["--max-workers", "65"], "--max-workers can't be over 64"),
    ],
)
def test_workers_over_the_cap_are_refused_at_startup(
    workers: int, extra: list[str], message: str
) -> None:
    with pytest.raises(RuntimeError, match="exited at startup") as info:
        LocalRuntime(EXAMPLES, workers=workers, extra_args=extra).start()
    assert message in str(info.value)


def test_daisi_toml_workers_are_clamped_to_the_cap(tmp_path: Path) -> None:
    for name, workers in (("Greedy", 5), ("Very Greedy", 100)):
        folder = tmp_path / name.lower().replace(" ", "-")
        folder.mkdir()
        (folder / "daisi.toml").write_text(f'name = "{name}"\nworkers = {workers}\n')
        (folder / "app.py").write_text(textwrap.dedent('def hi() -> str:\n    return "hi"\n'))
    with (
        LocalRuntime(tmp_path, extra_args=["--max-workers", "2"]) as rt,
        httpx.Client(base_url=rt.api, timeout=60) as c,
    ):
        for name in ("Greedy", "Very Greedy"):
            did = c.get(f"/v1/daisies/{name}").json()["id"]
            assert c.get(f"/v1/daisies/{did}/workers").json()["number"] == 2
            r = c.post(
                f"/v1/daisies/{did}/executions", params={"wait": 30}, json={"endpoint": "hi"}
            )
            assert r.json()["result"]["value"] == "hi"
        logs = rt.logs()
        assert "asks for 5 workers; starting 2" in logs
        assert "asks for 100 workers; starting 2" in logs
