"""Only ``DaisiError`` subclasses (and ValueError/TypeError for bad input) leave a public call.

Hostile peers are real: a closed port, a tiny non-Daisi ``http.server`` on an ephemeral
port (HTML, 404s, garbage JSON, JSON of the wrong shape, bad gzip), and a real runtime
behind the fault-injecting proxy answering garbage or dropping replies half-way.
"""

from __future__ import annotations

import http.server
import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from tests.support.http_server import http_server

from daisi_async import (
    AsyncDaisi,
    AsyncDaisiExecution,
    Daisi,
    DaisiConnectionError,
    DaisiError,
    DaisiNotFoundError,
    DaisiProtocolError,
    DaisiServerError,
    RetryPolicy,
)
from daisi_async._failures import translate
from daisi_async.testing import LocalRuntime
from support.faultproxy import FaultProxy, drop_mid_stream, status

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup, ExceptionGroup

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "daisies"
POLICY = RetryPolicy(attempts=3, backoff=0.01, max_backoff=0.05, max_retry_after=0.1)
JSON = {"Content-Type": "application/json"}
SUBMIT = r"/executions$"


def _raises_only_daisi_error(exc: BaseException) -> None:
    assert isinstance(exc, DaisiError), repr(exc)
    assert not isinstance(exc, BaseExceptionGroup), repr(exc)


# -- a server that is not a Daisi runtime ---------------------------------------------------
REPLIES: dict[str, tuple[int, str, bytes]] = {
    "html": (200, "text/html", b"<html><body>Welcome to nginx!</body></html>"),
    "html404": (404, "text/html", b"<html><body>Not Found</body></html>"),
    "garbage-json": (200, "application/json", b'{"id": '),
    "wrong-shape": (200, "application/json", b'["a", "list", "not", "an", "object"]'),
    "object-no-id": (200, "application/json", b'{"hello": "world", "protocol": 1}'),
    "not-utf8": (200, "application/json", b'{"id": "\xff\xfe"}'),
    "bad-gzip": (200, "application/json", b"this is not gzip"),
}


class _NotDaisi(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        mode = self.server.mode  # type: ignore[attr-defined]
        code, ctype, body = REPLIES[mode]
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        if mode == "bad-gzip":
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer


@pytest.fixture(params=list(REPLIES))
def not_daisi(request: pytest.FixtureRequest) -> Iterator[str]:
    with http_server(_NotDaisi, mode=request.param) as url:
        yield url


@pytest.mark.anyio
async def test_a_non_daisi_server_async(not_daisi: str) -> None:
    with anyio.fail_after(20):
        with pytest.raises(DaisiError) as info:
            async with AsyncDaisi("Echo", base_url=not_daisi, retries=POLICY):
                pass
        _raises_only_daisi_error(info.value)
        with pytest.raises(DaisiError) as info:
            await AsyncDaisi.connect("Echo", base_url=not_daisi, retries=POLICY)
        _raises_only_daisi_error(info.value)
        with pytest.raises(DaisiError) as info:
            await AsyncDaisi.list(base_url=not_daisi)
        _raises_only_daisi_error(info.value)


def test_a_non_daisi_server_sync(not_daisi: str) -> None:
    with pytest.raises(DaisiError) as info:
        Daisi("Echo", base_url=not_daisi, retries=POLICY)
    _raises_only_daisi_error(info.value)
    with pytest.raises(DaisiError) as info:
        Daisi.get_daisies(base_url=not_daisi)
    _raises_only_daisi_error(info.value)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["html", "garbage-json", "not-utf8", "bad-gzip"])
async def test_a_reply_that_is_not_json_names_the_url(mode: str) -> None:
    with (
        http_server(_NotDaisi, mode=mode) as url,
        anyio.fail_after(20),
        pytest.raises(DaisiProtocolError) as info,
    ):
        async with AsyncDaisi("Echo", base_url=url, retries=POLICY):
            pass
    assert isinstance(info.value, DaisiServerError)
    assert url in str(info.value) and "Daisi" in str(info.value)
    assert info.value.__cause__ is not None


def test_404_everywhere_is_not_a_daisi_server() -> None:
    """A server that answers 404 to every route is not a Daisi runtime: say so, naming
    the URL (not "no Daisi named ...", which sends the user looking for a typo)."""
    with http_server(_NotDaisi, mode="html404") as url:
        with pytest.raises(DaisiProtocolError) as info:
            Daisi("Echo", base_url=url)
        assert url in str(info.value) and "does not look like a Daisi runtime" in str(info.value)
        assert not isinstance(info.value, DaisiNotFoundError)
        with pytest.raises(DaisiProtocolError, match="does not look like a Daisi runtime"):
            Daisi.get_daisies(base_url=url)


# -- a closed port --------------------------------------------------------------------------
@pytest.fixture
def closed_port_url() -> str:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.anyio
async def test_closed_port_async(closed_port_url: str) -> None:
    with anyio.fail_after(20):
        with pytest.raises(DaisiConnectionError) as info:
            async with AsyncDaisi("Echo", base_url=closed_port_url, retries=POLICY):
                pass
        _raises_only_daisi_error(info.value)
        assert closed_port_url in str(info.value)
        with pytest.raises(DaisiConnectionError):
            await AsyncDaisi.connect("Echo", base_url=closed_port_url, retries=POLICY)
        with pytest.raises(DaisiConnectionError):
            await AsyncDaisi.list(base_url=closed_port_url)


def test_closed_port_sync(closed_port_url: str) -> None:
    with pytest.raises(DaisiConnectionError) as info:
        Daisi("Echo", base_url=closed_port_url, retries=POLICY)
    _raises_only_daisi_error(info.value)
    with pytest.raises(DaisiConnectionError):
        Daisi.get_daisies(base_url=closed_port_url)


# -- a real runtime behind a proxy that garbles or cuts replies -----------------------------
@pytest.fixture(scope="module")
def runtime() -> Iterator[LocalRuntime]:
    with LocalRuntime(EXAMPLES) as rt:
        yield rt


@pytest.fixture(scope="module")
def legacy_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    with LocalRuntime(
        EXAMPLES, legacy_only=True, store=tmp_path_factory.mktemp("legacy-errors")
    ) as rt:
        yield rt


@pytest.fixture
def proxy(runtime: LocalRuntime) -> Iterator[FaultProxy]:
    with FaultProxy(runtime.url) as p:
        yield p


GARBLED = [
    (None, "POST", SUBMIT, b"not json at all\n"),  # the batch submit stream
    (None, "POST", SUBMIT, b'{"type": "submitted"}\n'),  # a line of the wrong shape
    (None, "POST", SUBMIT, b'{"type": "submitted", "results": [{"oops": 1}]}\n'),
    (None, "POST", SUBMIT, b'{"type": "submitted", "results": "nope"}\n'),
    (None, "POST", SUBMIT, b"[1, 2]\n"),
    ("connect", "POST", SUBMIT, b"<html>"),  # the single-submit route (no task group)
    ("connect", "POST", SUBMIT, b'{"id": 1}'),
    ("connect", "POST", SUBMIT, b'{"id": "x", "status": "EXPLODED"}'),
    ("connect", "POST", SUBMIT, b'{"id": "x", "status": "FAILED", "error": "oops"}'),
    ("connect", "POST", SUBMIT, b'{"id": "x", "status": "FINISHED", "result": [1]}'),
]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("how", "method", "path", "body"), GARBLED, ids=[f"{m}-{b[:20]!r}" for _, m, _, b in GARBLED]
)
async def test_garbled_replies_from_a_real_runtime(
    proxy: FaultProxy, how: str | None, method: str, path: str, body: bytes
) -> None:
    proxy.add_rule(method=method, path_regex=path, times=100, action=status(200, JSON, body))
    with anyio.fail_after(30):
        if how == "connect":
            d = await AsyncDaisi.connect("Add Two Numbers", base_url=proxy.url, retries=POLICY)
            try:
                with pytest.raises(DaisiProtocolError) as info:
                    await d.compute(1, 2)
                _raises_only_daisi_error(info.value)
                proxy.clear_rules()
                assert await d.compute(2, 3) == 5  # the next good call still works
            finally:
                await d.aclose()
        else:
            async with AsyncDaisi("Add Two Numbers", base_url=proxy.url, retries=POLICY) as d:
                with pytest.raises(DaisiProtocolError) as info:
                    await d.compute(1, 2)
                _raises_only_daisi_error(info.value)
                proxy.clear_rules()
                assert await d.compute(2, 3) == 5


@pytest.mark.anyio
@pytest.mark.parametrize(
    "schema",
    [[{"id": "not an identifier"}], [{"nope": 1}], [{"id": "a"}, {"id": "a"}], "abc", [5]],
    ids=repr,
)
async def test_garbled_endpoint_schema(proxy: FaultProxy, schema: object) -> None:
    """Refused when connecting, not later when the endpoint attribute is read."""
    body = {
        "id": "x",
        "name": "Add Two Numbers",
        "endpoints": [{"name": "compute", "schema": schema}],
    }
    proxy.add_rule(
        method="GET",
        path_contains="/v1/daisies/",
        action=status(200, JSON, json.dumps(body).encode()),
    )
    with anyio.fail_after(20):
        with pytest.raises(DaisiProtocolError, match="compute"):
            async with AsyncDaisi("Add Two Numbers", base_url=proxy.url, retries=POLICY):
                pass
        async with AsyncDaisi("Add Two Numbers", base_url=proxy.url, retries=POLICY) as d:
            assert await d.compute(1, 2) == 3


@pytest.mark.anyio
async def test_garbled_wait_stream(runtime: LocalRuntime, proxy: FaultProxy) -> None:
    """The submit stream drops after its "submitted" line; the wait stream answers junk."""
    proxy.add_rule(method="POST", path_regex=SUBMIT, action=drop_mid_stream(after_lines=1))
    proxy.add_rule(
        method="POST", path_contains="/wait", times=100, action=status(200, JSON, b"{junk\n")
    )
    with anyio.fail_after(30):
        async with AsyncDaisi("Live Logging", base_url=proxy.url, retries=POLICY) as d:
            ex = await d.live_log_test_(1, 2, delay=0.3)
            with pytest.raises(DaisiProtocolError):
                await ex
            proxy.clear_rules()
            assert await d.live_log_test(2, 2, delay=0) == 4


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/events", b"event: status\ndata: {not json\n\n"),
        ("/events", b'event: status\ndata: {"status": "EXPLODED", "seq": 1}\n\n'),
        ("/events", b'event: log\ndata: {"seq": 1}\n\n'),
        ("/logs", b'{"lines": 5}'),
        ("/logs", b"<html>"),
    ],
)
async def test_garbled_status_and_logs(proxy: FaultProxy, path: str, body: bytes) -> None:
    ctype = {"Content-Type": "text/event-stream"} if path == "/events" else JSON
    with anyio.fail_after(30):
        async with AsyncDaisi("Live Logging", base_url=proxy.url, retries=POLICY) as d:
            ex = await d.live_log_test_(1, 2, delay=0.3)
            proxy.add_rule(
                method="GET", path_contains=path, times=100, action=status(200, ctype, body)
            )
            with pytest.raises(DaisiProtocolError):
                if path == "/logs":
                    await ex.logs()
                else:
                    async for _ in ex.logs():
                        pass
                    async for _ in ex.status():
                        pass
            proxy.clear_rules()
            assert await ex == 3


@pytest.mark.anyio
async def test_garbled_reattach_and_workers(proxy: FaultProxy) -> None:
    with anyio.fail_after(30):
        async with AsyncDaisi("Add Two Numbers", base_url=proxy.url, retries=POLICY) as d:
            eid = await (await d.compute_(1, 1)).start()
            proxy.add_rule(
                method="GET", path_contains="/v1/executions/", action=status(200, JSON, b"{}")
            )
            with pytest.raises(DaisiProtocolError):
                await AsyncDaisiExecution.from_id(d, eid)
            proxy.add_rule(method="GET", path_contains="/workers/", action=status(200, JSON, b"{}"))
            with pytest.raises(DaisiProtocolError):
                await d.workers.number()
            proxy.add_rule(method="GET", path_contains="/workers/", action=status(200, JSON, b"[]"))
            with pytest.raises(DaisiProtocolError):
                await d.workers.status()
            proxy.add_rule(
                method="GET", path_contains="/v1/daisies", action=status(200, JSON, b"{}")
            )
            with pytest.raises(DaisiProtocolError):
                await AsyncDaisi.list(base_url=proxy.url)
            assert await (await AsyncDaisiExecution.from_id(d, eid)) == 2


@pytest.mark.anyio
async def test_a_reply_cut_half_way(proxy: FaultProxy) -> None:
    """Every reply to GET /v1/daisies/... is cut after 5 body bytes: retried, then a
    DaisiConnectionError (not an httpx error, not a group)."""
    proxy.add_rule(method="GET", path_contains="/v1/daisies/", times=100, action=drop_mid_stream(5))
    with anyio.fail_after(20), pytest.raises(DaisiConnectionError) as info:
        async with AsyncDaisi("Add Two Numbers", base_url=proxy.url, retries=POLICY):
            pass
    _raises_only_daisi_error(info.value)
    assert isinstance(info.value.__cause__, httpx.TransportError)
    assert proxy.count("GET", "/v1/daisies/") == POLICY.attempts


# -- the legacy dialect ---------------------------------------------------------------------
@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [
        b'{"status": "FINISHED", "results": "!!! not base64 !!!"}',
        b'{"status": "FINISHED", "results": "bm90IGEgcGlja2xl"}',  # base64 of "not a pickle"
        b"<html>",
        b'{"status": 5}',
    ],
)
async def test_garbled_legacy_results(legacy_runtime: LocalRuntime, body: bytes) -> None:
    with FaultProxy(legacy_runtime.url) as proxy:
        proxy.add_rule(
            method="GET", path_contains="/results", times=100, action=status(200, JSON, body)
        )
        with anyio.fail_after(30):
            async with AsyncDaisi("Add Two Numbers", base_url=proxy.url, retries=POLICY) as d:
                assert d.protocol == "legacy"
                with pytest.raises(DaisiError) as info:
                    await d.compute(1, 2)
                _raises_only_daisi_error(info.value)
                proxy.clear_rules()
                assert await d.compute(2, 3) == 5


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/daisies/connect", b'{"name": "no id"}'),
        ("GET", "/daisies/connect", b"<html>"),
        ("GET", "/daisies/connect", b'{"id": "x", "endpoints": [{"nom": 1}]}'),
        ("POST", "/executions/", b"[]"),
        ("GET", "/status", b'{"a": 1}'),
    ],
)
async def test_garbled_legacy_routes(
    legacy_runtime: LocalRuntime, method: str, path: str, body: bytes
) -> None:
    with FaultProxy(legacy_runtime.url) as proxy:
        proxy.add_rule(method=method, path_contains=path, times=100, action=status(200, JSON, body))
        with anyio.fail_after(30):
            with pytest.raises(DaisiProtocolError) as info:
                async with AsyncDaisi("Live Logging", base_url=proxy.url, retries=POLICY) as d:
                    ex = await d.live_log_test_(1, 2, delay=1)
                    async for _ in ex.status():
                        pass
            _raises_only_daisi_error(info.value)


# -- background tasks and the error table ---------------------------------------------------
@pytest.mark.anyio
async def test_a_crashed_background_task_surfaces_as_a_daisi_error(
    runtime: LocalRuntime,
) -> None:
    async def boom() -> None:
        raise RuntimeError("boom")

    with anyio.fail_after(20):
        with pytest.raises(DaisiError, match="boom") as info:
            async with AsyncDaisi("Add Two Numbers", base_url=runtime.url) as d:
                d._session._dialect.spawner.spawn(boom)  # type: ignore[union-attr]
                await anyio.sleep(15)  # the crash cancels the block
        _raises_only_daisi_error(info.value)
        assert isinstance(info.value.__cause__, RuntimeError)
        await anyio.sleep(0.01)  # this task is not left cancelled
        async with AsyncDaisi("Add Two Numbers", base_url=runtime.url) as d:
            assert await d.compute(1, 1) == 2


def test_the_error_table() -> None:
    one = ExceptionGroup("x", [httpx.ConnectError("refused")])
    err = translate(one, "http://h/p")
    assert type(err) is DaisiConnectionError and err.__cause__ is one.exceptions[0]
    nested = BaseExceptionGroup("x", [ExceptionGroup("y", [DaisiNotFoundError("gone")])])
    assert isinstance(translate(nested, "http://h/p"), DaisiNotFoundError)
    two = ExceptionGroup("x", [httpx.ReadTimeout("t"), ValueError("v")])
    err = translate(two, "http://h/p")
    assert isinstance(err, DaisiError) and err.__cause__ is two
    assert "ReadTimeout" in str(err) and "ValueError" in str(err)
    cancelled = BaseExceptionGroup("x", [KeyboardInterrupt()])
    assert translate(cancelled, "http://h/p") is cancelled
    assert isinstance(translate(json.JSONDecodeError("m", "d", 0), "u"), DaisiProtocolError)
    assert isinstance(translate(httpx.DecodingError("gzip"), "u"), DaisiProtocolError)
    assert isinstance(translate(OSError("socket"), "u"), DaisiConnectionError)
