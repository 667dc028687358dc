"""Large results read straight from the socket (``_socket_get``): the same values, errors,
timeouts and cancellation as through httpx, and httpx wherever it must see the bytes."""

from __future__ import annotations

import asyncio
import http.server
import os
import queue
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import dill
import httpx
import numpy as np
import pytest
from tests.conftest import TEST_DAISIES
from tests.support.faultproxy import FaultProxy, drop_mid_stream
from tests.support.http_server import http_server

from daisi_async import (
    AsyncDaisi,
    DaisiAuthenticationError,
    DaisiConnectionError,
    DaisiError,
    DaisiNotFoundError,
    DaisiTimeoutError,
    RetryPolicy,
    _socket_body,
)
from daisi_async import _socket_get as socket_get
from daisi_async._config import Settings
from daisi_async._dialects.v1.blobs import Blobs
from daisi_async._transport import Transport
from daisi_async.testing import LocalRuntime

pytestmark = pytest.mark.anyio
asyncio_only = pytest.mark.parametrize("anyio_backend", ["asyncio"])
TOKENS = {"alice-token": "alice", "bob-token": "bob"}
BIG = 3 << 20


@pytest.fixture(scope="module")
def runtime() -> Iterator[LocalRuntime]:
    """The test Daisies behind tokens (the fast path must send the Authorization)."""
    with LocalRuntime(TEST_DAISIES, tokens=TOKENS) as rt:
        yield rt


@pytest.fixture
def proxy(runtime: LocalRuntime) -> Iterator[FaultProxy]:
    with FaultProxy(runtime.url) as p:
        yield p


def result_gets(proxy: FaultProxy) -> list[dict[str, str]]:
    """The headers of each GET of a result the proxy received."""
    return [r.headers for r in proxy.log if r.method == "GET" and r.path.endswith("/result")]


def on_socket(headers: dict[str, str]) -> bool:
    """Whether a request was sent by the socket path (httpx asks for gzip)."""
    return headers.get("accept-encoding") == "identity"


async def test_a_large_result_comes_back_exact(proxy: FaultProxy, anyio_backend: str) -> None:
    arr = np.random.default_rng(3).random((1 << 18) + 5)  # 2 MB
    before = socket_get.opened
    async with AsyncDaisi("Echo", base_url=proxy.url, access_token="alice-token") as d:
        assert await d.blob(BIG) == bytes(BIG)
        out = await d.echo({"a": arr, "again": arr})
        assert np.array_equal(out["a"], arr) and out["again"] is out["a"]
        assert await d.echo(1) == 1  # the next small call still works
    gets = result_gets(proxy)
    assert len(gets) == 2
    if anyio_backend == "asyncio":  # the socket path, with the transport's headers
        assert socket_get.opened == before + 2
        for headers in gets:
            assert on_socket(headers) and headers["connection"] == "close"
            assert headers["authorization"] == "token alice-token"
            assert headers["user-agent"] == "daisi-async"
    else:  # trio: httpx
        assert socket_get.opened == before
        assert not any(map(on_socket, gets))


class _CountedStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, owner: _Counting) -> None:
        self.inner, self.owner = inner, owner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            self.owner.received += len(chunk)
            yield chunk

    async def aclose(self) -> None:
        await self.inner.aclose()


class _Counting(httpx.AsyncHTTPTransport):
    """A user's transport: counts the body bytes it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.received = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _CountedStream(response.stream, self)
        return response


async def test_a_users_client_sees_every_byte(runtime: LocalRuntime) -> None:
    counting = _Counting()
    before = socket_get.opened
    async with (
        httpx.AsyncClient(transport=counting) as client,
        AsyncDaisi("Echo", base_url=runtime.url, client=client, access_token="alice-token") as d,
    ):
        assert await d.blob(BIG) == bytes(BIG)
    assert counting.received >= BIG
    assert socket_get.opened == before


@asyncio_only
async def test_a_proxy_from_the_environment_is_honoured(
    runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = httpx.URL(runtime.url + "/pebble-api/v1/executions/x/result")
    transport = Transport(Settings.resolve(base_url=runtime.url))
    assert socket_get.usable(transport, url)
    await transport.aclose()
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    transport = Transport(Settings.resolve(base_url=runtime.url))
    assert not socket_get.usable(transport, url)  # httpx would use the proxy
    await transport.aclose()


@asyncio_only
async def test_a_dropped_download_is_an_error_then_succeeds(proxy: FaultProxy) -> None:
    proxy.add_rule(method="GET", path_contains="/result", action=drop_mid_stream(1 << 20))
    before = socket_get.opened
    async with AsyncDaisi("Echo", base_url=proxy.url, access_token="alice-token") as d:
        ex = await d.blob_(BIG)
        with pytest.raises(DaisiConnectionError) as info:
            await ex
        assert isinstance(info.value.__cause__, httpx.ReadError)
        assert await ex == bytes(BIG)  # asked again: the whole value
    assert socket_get.opened == before + 2
    assert all(map(on_socket, result_gets(proxy)))


# -- a small server of our own: bodies cut short, stalls ---------------------------------
class _State:
    def __init__(self) -> None:
        self.plans: queue.Queue[tuple[int, bytes, bool]] = queue.Queue()
        self.sent = threading.Event()  # a reply (or its first part) went out
        self.gone = threading.Event()  # a stalled client closed its connection


class _Plan(http.server.BaseHTTPRequestHandler):
    """Answers each GET with the next planned reply: ``(length, body, stall)``."""

    def do_GET(self) -> None:
        state: _State = self.server.state  # type: ignore[attr-defined]
        length, body, stall = state.plans.get(timeout=30)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-dill")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        state.sent.set()
        if stall:  # hold the connection until the client goes away (or 30 s)
            self.connection.settimeout(30)
            try:
                gone = self.connection.recv(1) == b""
            except OSError:
                gone = True
            if gone:
                state.gone.set()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, _State]]:
    state = _State()
    with http_server(_Plan, state=state) as url:
        yield url, state


def blobs(url: str, *, client: httpx.AsyncClient | None = None, timeout: Any = None) -> Blobs:
    settings = Settings.resolve(base_url=url, timeout=timeout, retries=RetryPolicy(attempts=1))
    return Blobs(Transport(settings, client), None)


DATA = dill.dumps(np.arange(1 << 18, dtype=np.float64), protocol=5)  # 2 MB, whole


@asyncio_only
@pytest.mark.parametrize("sent", [len(DATA) // 2, len(DATA)], ids=["half", "whole-pickle"])
async def test_a_body_cut_short_is_never_a_value(server: tuple[str, _State], sent: int) -> None:
    """Closed before its Content-Length: an error, even if the pickle in it is whole."""
    url, state = server
    state.plans.put((len(DATA) + 10, DATA[:sent], False))
    before = socket_get.opened
    with pytest.raises(DaisiConnectionError) as info:
        await blobs(url).download("e", len(DATA))
    assert isinstance(info.value.__cause__, httpx.RemoteProtocolError)
    assert f"expected {len(DATA) + 10}" in str(info.value)
    assert socket_get.opened == before + 1
    state.plans.put((len(DATA), DATA, False))  # the next good download works
    assert np.array_equal(await blobs(url).download("e", len(DATA)), np.arange(1 << 18))


async def test_a_short_body_fails_as_through_httpx(
    server: tuple[str, _State], anyio_backend: str
) -> None:
    url, state = server
    errors = []
    before = socket_get.opened
    for client in (None, httpx.AsyncClient()):
        state.plans.put((len(DATA), DATA[: len(DATA) // 2], False))
        with pytest.raises(DaisiError) as info:
            await blobs(url, client=client).download("e", len(DATA))
        errors.append((type(info.value), type(info.value.__cause__)))
    assert errors[0] == errors[1] == (DaisiConnectionError, httpx.RemoteProtocolError)
    assert socket_get.opened == before + (anyio_backend == "asyncio")  # the first, on asyncio


@asyncio_only
async def test_a_stalled_body_times_out(server: tuple[str, _State]) -> None:
    url, state = server
    state.plans.put((len(DATA), DATA[: len(DATA) // 2], True))
    before = socket_get.opened
    timeout = httpx.Timeout(30, read=0.5)
    start = time.monotonic()
    with pytest.raises(DaisiTimeoutError) as info:
        await blobs(url, timeout=timeout).download("e", len(DATA))
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)
    assert time.monotonic() - start < 20  # the read timeout, not the 30 s of the others
    assert socket_get.opened == before + 1
    assert await anyio.to_thread.run_sync(state.gone.wait, 10)  # and the connection closed


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def reading_threads() -> list[int]:
    """Threads whose stack is in ``_socket_body`` (reading a body)."""
    found = []
    for ident, frame in sys._current_frames().items():
        f: Any = frame
        while f is not None:
            if f.f_code.co_filename == _socket_body.__file__:
                found.append(ident)
                break
            f = f.f_back
    return found


@asyncio_only
@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts /proc/self/fd")
@pytest.mark.parametrize("how", ["cancel-scope", "task-cancel"])
async def test_cancelling_a_download_leaks_nothing(server: tuple[str, _State], how: str) -> None:
    url, state = server
    b = blobs(url, timeout=60)
    state.plans.put((len(DATA), b"x" * 1000, False))  # a first call opens the client's pool
    with pytest.raises(DaisiError):
        await b.download("e", 10)
    fds = open_fds()
    state.sent.clear()
    state.plans.put((len(DATA), DATA[: len(DATA) // 2], True))
    before = socket_get.opened
    start = time.monotonic()

    async def when_sent() -> None:
        assert await anyio.to_thread.run_sync(state.sent.wait, 30)
        for _ in range(200):
            if reading_threads():
                return  # a thread is blocked reading the rest
            await asyncio.sleep(0.05)
        raise AssertionError("no thread is reading the body")

    if how == "task-cancel":
        task = asyncio.create_task(b.download("e", len(DATA)))
        await when_sent()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    else:
        async with anyio.create_task_group() as tg:
            tg.start_soon(b.download, "e", len(DATA))
            await when_sent()
            tg.cancel_scope.cancel()
    assert time.monotonic() - start < 20  # not the 60 s read timeout
    assert socket_get.opened == before + 1
    assert await anyio.to_thread.run_sync(state.gone.wait, 10)  # the server saw it go
    # The socket is closed by now: allow the OS, and the reading thread's unwinding, a moment.
    for _ in range(100):
        if open_fds() <= fds and not reading_threads():
            break
        await asyncio.sleep(0.05)
    assert open_fds() <= fds
    assert not reading_threads()  # no thread left in a read of the body
    await b.transport.aclose()


# -- error replies: the fast path steps aside, httpx makes the typed error ---------------
@asyncio_only
async def test_error_replies_are_the_same_typed_errors(
    runtime: LocalRuntime, proxy: FaultProxy
) -> None:
    async with AsyncDaisi("Echo", base_url=runtime.url, access_token="alice-token") as d:
        ex = await d.blob_(BIG)
        assert await ex == bytes(BIG)
        eid = ex.id
    assert eid is not None
    cases = [
        ("alice-token", "no-such-execution", DaisiNotFoundError),
        ("bob-token", eid, DaisiNotFoundError),  # someone else's execution
        ("wrong-token", eid, DaisiAuthenticationError),
    ]
    for token, execution, kind in cases:
        seen = []
        for client in (None, httpx.AsyncClient()):
            settings = Settings.resolve(base_url=proxy.url, access_token=token)
            with pytest.raises(DaisiError) as info:
                await Blobs(Transport(settings, client), None).download(execution, BIG)
            seen.append((type(info.value), str(info.value)))
        assert seen[0] == seen[1] and seen[0][0] is kind, seen
    gets = result_gets(proxy)  # the socket path asked first, then httpx (twice per case)
    assert [on_socket(h) for h in gets] == [True, False, False] * len(cases)
