"""The async client through a fault-injecting proxy: retries without duplicates.

Every test talks to a real runtime through a real proxy (tests/support/faultproxy.py)
that resets connections, answers 5xx/429, drops streams half-way or delays requests,
and checks that exactly one execution was created on the server.
"""

from __future__ import annotations

import http.server
import itertools
import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from daisi_async import (
    AsyncDaisi,
    AsyncDaisiExecution,
    DaisiAuthenticationError,
    DaisiConnectionError,
    DaisiError,
    DaisiNotFoundError,
    DaisiServerError,
    RetryPolicy,
)
from daisi_async._config import Settings
from daisi_async._transport import Transport
from daisi_async.testing import LocalRuntime
from support.faultproxy import (
    FaultProxy,
    Logged,
    delay,
    drop_mid_stream,
    reset_after_forward,
    reset_before,
    status,
)
from support.http_server import http_server
from support.v1_calls import count_executions

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "daisies"
POLICY = RetryPolicy(attempts=6, backoff=0.01, max_backoff=0.1, max_retry_after=2)
SUBMIT = r"/executions$"  # POST /v1/executions (batch) or /v1/daisies/{id}/executions
WAIT = "/v1/executions/wait"


@pytest.fixture(scope="module")
def runtime() -> Iterator[LocalRuntime]:
    with LocalRuntime(EXAMPLES, workers=2) as rt:
        yield rt


@pytest.fixture(scope="module")
def token_runtime() -> Iterator[LocalRuntime]:
    with LocalRuntime(EXAMPLES, tokens={"t": "alice"}) as rt:
        yield rt


@pytest.fixture
def proxy(runtime: LocalRuntime) -> Iterator[FaultProxy]:
    with FaultProxy(runtime.url) as p:
        yield p


def client(url: str, name: str = "Add Two Numbers", **kwargs: Any) -> AsyncDaisi:
    return AsyncDaisi(name, base_url=url, retries=POLICY, **kwargs)


def keys(entry: Logged) -> list[str | None]:
    """The idempotency keys a submission carried (batch items, or the header)."""
    body = json.loads(entry.body)
    if "executions" in body:
        return [item.get("idempotency_key") for item in body["executions"]]
    return [entry.headers.get("idempotency-key")]


def gaps(entries: list[Logged]) -> list[float]:
    return [b.time - a.time for a, b in itertools.pairwise(entries)]


# -- connection resets --------------------------------------------------------------------
async def test_reset_before_forwarding_the_submit(runtime: LocalRuntime, proxy: FaultProxy) -> None:
    proxy.add_rule(method="POST", path_regex=SUBMIT, action=reset_before())
    before = count_executions(runtime)
    with anyio.fail_after(20):
        async with client(proxy.url) as d:
            assert await d.compute(5, 6) == 11
    assert count_executions(runtime) == before + 1
    submits = proxy.matching("POST", path_regex=SUBMIT)
    assert [s.forwarded for s in submits] == [False, True]
    assert keys(submits[0]) == keys(submits[1])


@pytest.mark.parametrize("with_block", [True, False], ids=["batched", "connect"])
async def test_reset_after_forwarding_the_submit_is_not_duplicated(
    runtime: LocalRuntime, proxy: FaultProxy, with_block: bool
) -> None:
    """The server created the execution but the client saw the connection drop: the
    retry carries the same key and gets the same execution back."""
    proxy.add_rule(method="POST", path_regex=SUBMIT, action=reset_after_forward())
    before = count_executions(runtime)
    with anyio.fail_after(20):
        if with_block:
            async with client(proxy.url) as d:
                ex = await d.compute_(5, 6)
                assert await ex == 11
        else:  # no task group: on trio, the single-submit route with its header
            d = await AsyncDaisi.connect("Add Two Numbers", base_url=proxy.url, retries=POLICY)
            try:
                ex = await d.compute_(5, 6)
                assert await ex == 11
            finally:
                await d.aclose()
    assert count_executions(runtime) == before + 1
    submits = proxy.matching("POST", path_regex=SUBMIT)
    assert len(submits) == 2 and all(s.forwarded for s in submits)
    first, second = keys(submits[0]), keys(submits[1])
    assert first == second and all(first)


# -- statuses that say "try again" --------------------------------------------------------
@pytest.mark.parametrize("code", [503, 429])
async def test_retry_after_is_honoured(runtime: LocalRuntime, proxy: FaultProxy, code: int) -> None:
    proxy.add_rule(
        method="POST", path_regex=SUBMIT, action=status(code, {"Retry-After": "1"}, b"busy")
    )
    before = count_executions(runtime)
    with anyio.fail_after(20):
        async with client(proxy.url) as d:
            assert await d.compute(1, 2) == 3
    assert count_executions(runtime) == before + 1
    submits = proxy.matching("POST", path_regex=SUBMIT)
    assert [s.forwarded for s in submits] == [False, True]
    assert 0.9 <= gaps(submits)[0] < 1.9


async def test_retry_after_is_capped(runtime: LocalRuntime, proxy: FaultProxy) -> None:
    proxy.add_rule(method="POST", path_regex=SUBMIT, action=status(503, {"Retry-After": "30"}))
    before = count_executions(runtime)
    with anyio.fail_after(20):
        async with client(proxy.url) as d:
            assert await d.compute(1, 2) == 3
    assert count_executions(runtime) == before + 1
    submits = proxy.matching("POST", path_regex=SUBMIT)
    assert 1.8 <= gaps(submits)[0] < 3.0  # max_retry_after=2


@pytest.mark.parametrize("code", [502, 500, 504, 408])
async def test_transient_statuses_back_off_exponentially(
    runtime: LocalRuntime, proxy: FaultProxy, code: int
) -> None:
    policy = RetryPolicy(attempts=6, backoff=0.05, max_backoff=0.2, max_retry_after=2)
    proxy.add_rule(method="POST", path_regex=SUBMIT, times=3, action=status(code))
    before = count_executions(runtime)
    with anyio.fail_after(20):
        async with AsyncDaisi("Add Two Numbers", base_url=proxy.url, retries=policy) as d:
            assert await d.compute(2, 2) == 4
    assert count_executions(runtime) == before + 1
    submits = proxy.matching("POST", path_regex=SUBMIT)
    assert [s.forwarded for s in submits] == [False, False, False, True]
    # Full jitter: each wait is at most min(max_backoff, backoff * 2**n) (+ slack).
    for n, gap in enumerate(gaps(submits)):
        assert gap <= min(0.2, 0.05 * 2**n) + 0.25, (n, gap)


async def test_retries_exhausted_raise_server_error(
    runtime: LocalRuntime, proxy: FaultProxy
) -> None:
    proxy.add_rule(method="POST", path_regex=SUBMIT, times=1000, action=status(503))
    before = count_executions(runtime)
    with anyio.fail_after(10):
        async with client(proxy.url) as d:
            with pytest.raises(DaisiServerError) as info:
                await d.compute(1, 1)
    assert isinstance(info.value, DaisiError) and info.value.status_code == 503
    assert proxy.count("POST", path_regex=SUBMIT) == POLICY.attempts
    assert count_executions(runtime) == before


async def test_retries_exhausted_on_connect(proxy: FaultProxy) -> None:
    proxy.add_rule(times=1000, action=status(503, {"Retry-After": "0"}))
    with anyio.fail_after(10), pytest.raises(DaisiServerError):
        async with client(proxy.url):
            pass
    assert len(proxy.requests) == POLICY.attempts


async def test_connection_refused() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    with anyio.fail_after(10), pytest.raises(DaisiConnectionError):
        async with client(url):
            pass


async def test_proxy_stopped_mid_session(runtime: LocalRuntime, proxy: FaultProxy) -> None:
    before = count_executions(runtime)
    with anyio.fail_after(10):
        async with client(proxy.url) as d:
            assert await d.compute(1, 1) == 2
            proxy.stop()
            with pytest.raises(DaisiConnectionError):
                await d.compute(2, 2)
    assert count_executions(runtime) == before + 1


async def test_timeouts_are_retried(runtime: LocalRuntime, proxy: FaultProxy) -> None:
    proxy.add_rule(method="GET", path_contains="/v1/daisies/", action=delay(1.5))
    with anyio.fail_after(20):
        async with client(proxy.url, timeout=0.5) as d:
            assert await d.compute(3, 4) == 7
    assert proxy.count("GET", "/v1/daisies/") == 2


# -- streams dropped half-way -------------------------------------------------------------
# (An explicit start() goes out on the batch stream; awaited at once, a lone call would
# take the one-execution route: tests/test_submit.py.)
async def test_submit_stream_dropped_after_submitted_line(
    runtime: LocalRuntime, proxy: FaultProxy
) -> None:
    """The submit stream drops after its first line, then the wait stream drops too."""
    proxy.add_rule(method="POST", path_regex=SUBMIT, action=drop_mid_stream(after_lines=1))
    proxy.add_rule(method="POST", path_contains=WAIT, action=drop_mid_stream(5))
    before = count_executions(runtime)
    with anyio.fail_after(20):
        async with client(proxy.url, "Live Logging") as d:
            ex = d.live_log_test(1, 2, delay=0.5)
            await ex.start()
            assert await ex == 3
    assert count_executions(runtime) == before + 1
    assert proxy.count("POST", path_regex=SUBMIT) == 1
    assert proxy.count("POST", WAIT) >= 2


async def test_submit_stream_dropped_inside_submitted_line(
    runtime: LocalRuntime, proxy: FaultProxy
) -> None:
    """The drop comes before the client learnt the execution id: it must resubmit with
    the same key (the server made the execution) and get the value."""
    proxy.add_rule(method="POST", path_regex=SUBMIT, action=drop_mid_stream(10))
    before = count_executions(runtime)
    with anyio.fail_after(20):
        async with client(proxy.url) as d:
            ex = d.compute(5, 6)
            await ex.start()
            assert await ex == 11
    assert count_executions(runtime) == before + 1
    submits = proxy.matching("POST", path_regex=SUBMIT)
    assert len(submits) == 2 and keys(submits[0]) == keys(submits[1])


async def test_wait_stream_retries_503(runtime: LocalRuntime, proxy: FaultProxy) -> None:
    proxy.add_rule(method="POST", path_regex=SUBMIT, action=drop_mid_stream(after_lines=1))
    proxy.add_rule(method="POST", path_contains=WAIT, times=2, action=status(503))
    before = count_executions(runtime)
    with anyio.fail_after(20):
        async with client(proxy.url) as d:
            ex = d.compute(4, 5)
            await ex.start()
            assert await ex == 9
    assert count_executions(runtime) == before + 1
    assert [e.forwarded for e in proxy.matching("POST", WAIT)][:3] == [False, False, True]


async def test_wait_poll_dropped_without_task_group(
    runtime: LocalRuntime, proxy: FaultProxy
) -> None:
    """``AsyncDaisi.connect()`` (no task group): the long-poll GET drops and is retried."""
    proxy.add_rule(method="GET", path_contains="wait=", action=drop_mid_stream(5))
    proxy.add_rule(method="POST", path_contains=WAIT, action=drop_mid_stream(5))
    before = count_executions(runtime)
    with anyio.fail_after(20):
        d = await AsyncDaisi.connect("Live Logging", base_url=proxy.url, retries=POLICY)
        try:
            assert await d.live_log_test(1, 2, delay=0.5) == 3
        finally:
            await d.aclose()
    assert count_executions(runtime) == before + 1


async def test_live_logs_survive_dropped_event_streams(
    runtime: LocalRuntime, proxy: FaultProxy
) -> None:
    proxy.add_rule(
        method="GET", path_contains="/events", times=2, action=drop_mid_stream(after_lines=6)
    )
    before = count_executions(runtime)
    with anyio.fail_after(30):
        async with client(proxy.url, "Live Logging") as d:
            ex = await d.live_log_test_(1, 2, delay=2)
            live = [line async for line in ex.logs()]
            assert await ex == 3
            assert live == await ex.logs()
    assert len(live) >= 5 and live[-1].startswith("Done")
    assert len(set(live)) == len(live)
    assert count_executions(runtime) == before + 1
    events = proxy.matching("GET", "/events")
    assert len(events) >= 3
    resumed = [int(e.headers.get("last-event-id", "0")) for e in events]
    assert resumed[0] == 0 and resumed == sorted(resumed) and resumed[1] > 0


# -- errors that are not retried ----------------------------------------------------------
async def test_401_is_not_retried(token_runtime: LocalRuntime) -> None:
    with FaultProxy(token_runtime.url) as proxy:
        with anyio.fail_after(10), pytest.raises(DaisiAuthenticationError):
            async with client(proxy.url, access_token="bad"):
                pass
        assert [e.status for e in proxy.log].count(401) == 1
        assert len(proxy.requests) == len(set(proxy.requests))
        assert proxy.log[-1].status == 401


async def test_404_is_not_retried(proxy: FaultProxy) -> None:
    with anyio.fail_after(10):
        with pytest.raises(DaisiNotFoundError):
            async with client(proxy.url, "No Such Daisi"):
                pass
        assert proxy.count("GET", "/v1/daisies/") == 1
        async with client(proxy.url) as d:
            with pytest.raises(DaisiNotFoundError):
                await AsyncDaisiExecution.from_id(d, "00000000-0000-0000-0000-000000000000")
    assert proxy.count("GET", "/v1/executions/00000000") == 1


async def test_event_stream_follows_the_sse_format(
    runtime: LocalRuntime, proxy: FaultProxy
) -> None:
    """A data field split over several ``data:`` lines is one payload (joined by a
    newline); comments, ``retry:`` and ``id:`` fields are understood, not mistaken."""
    body = (
        b": a comment\n"
        b"retry: 20\n"
        b"id: 1\n"
        b"event: log\n"
        b'data: {"seq": 1,\n'
        b'data:  "line": "first"}\n'
        b"\n"
        b"id: 2\n"
        b"event: status\n"
        b'data: {"seq": 2, "status": "FINISHED"}\n'
        b"\n"
    )
    with anyio.fail_after(20):
        async with client(proxy.url) as d:
            ex = await d.compute_(1, 2)
            assert await ex == 3
            proxy.add_rule(
                method="GET",
                path_contains="/events",
                action=status(200, {"Content-Type": "text/event-stream"}, body),
            )
            assert [line async for line in ex.logs()] == ["first"]


# -- the direct lane: requests straight to the connection pool ------------------------------
def httpx_requests(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The requests httpx's client logged (it logs each one it sends itself)."""
    return [r.getMessage() for r in caplog.records if r.name == "httpx"]


async def test_an_own_client_sends_straight_to_its_pool(
    runtime: LocalRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    """Requests of the client ``AsyncDaisi`` made skip the client's layers (httpx logs
    none of them); a caller's own client sees every request."""
    caplog.set_level(logging.INFO, logger="httpx")
    with anyio.fail_after(30):
        async with client(runtime.url) as d:
            assert await d.compute(2, 3) == 5
            assert [await x for x in [d.compute(i, 1) for i in range(5)]] == [1, 2, 3, 4, 5]
        assert httpx_requests(caplog) == []
        async with httpx.AsyncClient() as own, client(runtime.url, client=own) as d:
            assert await d.compute(2, 3) == 5
        assert any("/executions" in m for m in httpx_requests(caplog))


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every GET with JSON naming the request target and its Cookie header;
    ``/set`` also sets a cookie."""

    def do_GET(self) -> None:
        body = json.dumps({"target": self.path, "cookie": self.headers.get("cookie")}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        if self.path.endswith("/set"):
            self.send_header("set-cookie", "session=s1; Path=/")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


async def test_a_server_that_sets_cookies_gets_them_back() -> None:
    """A cookie a server sets is kept and sent with the next requests, as the client's
    own path does."""
    with http_server(_Recorder) as url:
        transport = Transport(Settings.resolve(base_url=url))
        try:
            with anyio.fail_after(20):
                first = (await transport.request("GET", "/set")).json()
                then = (await transport.request("GET", "/next")).json()
        finally:
            await transport.aclose()
    assert first["cookie"] is None
    assert then["cookie"] == "session=s1"


async def test_a_proxy_from_the_environment_carries_the_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With ``HTTP_PROXY`` set, requests go to the proxy (in absolute form), as httpx sends
    them, not straight to the server."""
    with http_server(_Recorder) as proxy_url:
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        transport = Transport(Settings.resolve(base_url="http://daisi.invalid:8421"))
        try:
            with anyio.fail_after(20):
                reply = (await transport.request("GET", "/capabilities")).json()
        finally:
            await transport.aclose()
    assert reply["target"] == "http://daisi.invalid:8421/pebble-api/capabilities"
