"""What a new user meets first: a server that is not running, or not a Daisi server, a
misspelt Daisi or endpoint, an endpoint read before connecting, a broken Daisi."""

from __future__ import annotations

import http.server
import socket
import time
from collections.abc import Iterator

import anyio
import pytest
from tests.support.http_server import http_server

from daisi_async import (
    AsyncDaisi,
    AsyncDaisiExecution,
    Daisi,
    DaisiConnectionError,
    DaisiNotConnectedError,
    DaisiNotFoundError,
    DaisiProtocolError,
    RetryPolicy,
)
from daisi_async.testing import LocalRuntime
from support.faultproxy import FaultProxy

POLICY = RetryPolicy(attempts=4, backoff=0.05, max_backoff=0.1)


@pytest.fixture
def closed_port_url() -> str:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


# -- a server that is not running -----------------------------------------------------------
@pytest.mark.anyio
async def test_not_running_fails_fast_and_says_what_to_do(closed_port_url: str) -> None:
    """The default policy would retry for ~1.4 s; the first request of a client that was
    refused says at once that the server is not running, and where it looked."""
    AsyncDaisi("warm-up", base_url=closed_port_url)  # imports, outside the measure
    started = time.perf_counter()
    with pytest.raises(DaisiConnectionError) as info:
        async with AsyncDaisi("Echo", base_url=closed_port_url):
            pass
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0, elapsed  # target < 0.3 s; a generous bound on a loaded machine
    message = str(info.value)
    assert f"could not connect to {closed_port_url}" in message
    assert "is `daisi serve` running?" in message
    assert "DAISI_BASE_URL" in message and "base_url=" in message


def test_not_running_sync(closed_port_url: str) -> None:
    started = time.perf_counter()
    with pytest.raises(DaisiConnectionError, match="is `daisi serve` running"):
        Daisi("Echo", base_url=closed_port_url)
    with pytest.raises(DaisiConnectionError, match=closed_port_url):
        Daisi.get_daisies(base_url=closed_port_url)
    assert time.perf_counter() - started < 4.0


@pytest.mark.anyio
async def test_later_requests_keep_the_retry_policy(
    echo_runtime: LocalRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    """Once the server answered, a refused connection is retried (a restart, say)."""
    caplog.set_level("WARNING", logger="daisi_async")
    with FaultProxy(echo_runtime.url) as proxy:
        with anyio.fail_after(30):
            async with AsyncDaisi("Echo", base_url=proxy.url, retries=POLICY) as d:
                assert await d.echo(1) == 1
                assert not [r for r in caplog.records if "retrying" in r.message]
                proxy.stop()
                with pytest.raises(DaisiConnectionError, match=proxy.url):
                    await d.echo(2)
    retries = [r for r in caplog.records if r.message.startswith("retrying")]
    assert len(retries) == POLICY.attempts - 1
    assert all("ConnectError" in r.message for r in retries)


# -- a server that is not a Daisi server ----------------------------------------------------
class _Html404(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        body = b"<html><body>Not Found</body></html>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def web_server() -> Iterator[str]:
    with http_server(_Html404) as url:
        yield url


@pytest.mark.anyio
async def test_any_web_server_is_not_a_daisi_server(web_server: str) -> None:
    with anyio.fail_after(20):
        with pytest.raises(DaisiProtocolError) as info:
            async with AsyncDaisi("Add Two Numbers", base_url=web_server):
                pass
        assert not isinstance(info.value, DaisiNotFoundError)
        assert f"{web_server} does not look like a Daisi runtime" in str(info.value)
        with pytest.raises(DaisiProtocolError, match=web_server):
            await AsyncDaisi.list(base_url=web_server)


# -- names that are nearly right -------------------------------------------------------------
@pytest.mark.anyio
async def test_a_misspelt_daisi_name_suggests_the_near_one(daisi_runtime: LocalRuntime) -> None:
    url = daisi_runtime.url
    with pytest.raises(DaisiNotFoundError) as info:
        async with AsyncDaisi("Add Two Number", base_url=url):
            pass
    assert str(info.value) == (
        f"no Daisi named 'Add Two Number' at {url}; did you mean 'Add Two Numbers'?"
    )
    with pytest.raises(DaisiNotFoundError) as info:
        Daisi("Prnt Hello", base_url=url)
    assert str(info.value).endswith("did you mean 'Print Hello'?")
    with pytest.raises(DaisiNotFoundError) as info:
        await AsyncDaisi.connect("Nothing Like Any Name At All", base_url=url)
    assert str(info.value) == f"no Daisi named 'Nothing Like Any Name At All' at {url}"
    d = AsyncDaisi("Add Two Number", base_url=url)
    with pytest.raises(DaisiNotFoundError):
        await d.__aenter__()
    with pytest.raises(DaisiNotConnectedError, match="is not connected yet"):
        _ = d.compute  # a failed connect is not a close


@pytest.mark.anyio
async def test_a_misspelt_endpoint_suggests_the_near_one(daisi_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Add Two Numbers", base_url=daisi_runtime.url) as d:
        with pytest.raises(AttributeError) as info:
            _ = d.comptue
        assert str(info.value) == (
            f"Daisi 'Add Two Numbers' at {daisi_runtime.url} has no endpoint 'comptue'; "
            "did you mean 'compute'?"
        )
        assert not hasattr(d, "comptue_")
        with pytest.raises(DaisiNotFoundError, match="did you mean 'compute'"):
            d.call("Compute", 1, 2)
        with pytest.raises(DaisiNotFoundError, match="did you mean 'compute'"):
            d.map("compte", [(1, 2)])
        assert await d.compute(1, 2) == 3


@pytest.mark.anyio
async def test_errors_name_the_server(daisi_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Add Two Numbers", base_url=daisi_runtime.url) as d:
        with pytest.raises(DaisiNotFoundError, match=daisi_runtime.url):
            await AsyncDaisiExecution.from_id(d, "00000000-0000-0000-0000-000000000000")


# -- before connecting -----------------------------------------------------------------------
@pytest.mark.anyio
async def test_an_endpoint_before_connecting_says_how_to_connect(
    daisi_runtime: LocalRuntime,
) -> None:
    d = AsyncDaisi("Add Two Numbers", base_url=daisi_runtime.url)
    with pytest.raises(DaisiNotConnectedError) as info:
        _ = d.compute
    assert isinstance(info.value, AttributeError)
    message = str(info.value)
    assert "AsyncDaisi('Add Two Numbers') is not connected yet" in message
    assert "async with AsyncDaisi('Add Two Numbers') as d:" in message
    assert "await AsyncDaisi.connect('Add Two Numbers')" in message
    assert not hasattr(d, "compute")
    with pytest.raises(DaisiNotConnectedError):
        _ = d.info
    assert "compute" not in dir(d)
    async with d:  # the same object connects, and then has its endpoints
        assert await d.compute(1, 2) == 3
    with pytest.raises(DaisiNotConnectedError, match="is closed"):
        _ = d.compute


def test_a_closed_sync_daisi_says_so(daisi_runtime: LocalRuntime) -> None:
    with Daisi("Add Two Numbers", base_url=daisi_runtime.url) as d:
        assert d.compute(1, 2).value == 3
    with pytest.raises(DaisiNotConnectedError, match=r"Daisi\('Add Two Numbers'\) is closed"):
        _ = d.compute


# -- a broken Daisi --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def broken_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    root = tmp_path_factory.mktemp("broken-daisies")
    folder = root / "Broken Sum"
    folder.mkdir()
    (folder / "app.py").write_text("def compute(a, b):\n    return a +\n")
    with LocalRuntime(root, store=root / "store") as rt:
        yield rt


@pytest.mark.anyio
async def test_a_broken_daisi_says_why_for_its_endpoints(broken_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Broken Sum", base_url=broken_runtime.url) as d:
        assert d.info.broken
        with pytest.raises(AttributeError) as info:
            _ = d.compute
        message = str(info.value)
        assert message.startswith(
            f"Daisi 'Broken Sum' at {broken_runtime.url} is broken, so it has no endpoint 'compute'"
        )
        assert "SyntaxError" in message
        with pytest.raises(DaisiNotFoundError, match="is broken"):
            d.call("compute", 1, 2)
