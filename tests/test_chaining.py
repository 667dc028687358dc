"""Remote results: an execution passed as an argument is a reference, resolved server-side."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import numpy as np
import pytest

from daisi_async import AsyncDaisi, DaisiExecutionError
from daisi_async.testing import LocalRuntime

pytestmark = pytest.mark.anyio


class _CountingStream(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream, counter: list[int]) -> None:
        self.inner = inner
        self.counter = counter

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            self.counter[0] += len(chunk)
            yield chunk

    async def aclose(self) -> None:
        await self.inner.aclose()


class CountingTransport(httpx.AsyncHTTPTransport):
    """A real HTTP transport that counts the body bytes it receives."""

    def __init__(self) -> None:
        super().__init__()
        self.received = [0]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _CountingStream(response.stream, self.received)
        return response


async def test_chained_results_never_reach_the_client(echo_runtime: LocalRuntime) -> None:
    transport = CountingTransport()
    big = np.random.rand(500, 500)  # 2 MB: far above the inline-result size
    async with (
        httpx.AsyncClient(transport=transport) as client,
        AsyncDaisi("Echo", base_url=echo_runtime.url, client=client) as d,
    ):
        first = await d.echo_(big)
        second = await d.echo_(first)  # a reference to first's result
        third = d.echo(second)  # lazy, chained again
        await third.wait()
        assert transport.received[0] < 50_000, transport.received[0]
        result = await third
        assert np.array_equal(result, big)
        assert transport.received[0] < big.nbytes * 1.2  # only the final download


async def test_seed_remote_results_example(daisi_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Daisi Serialize", base_url=daisi_runtime.url) as d:
        stack = await d.make_stack(nx=200, ny=200, layers=10)
        ex2 = await d.compute_(map_stack=stack, map=np.random.rand(200, 200))
        ex3 = await d.compute_(map_stack=ex2, map=np.random.rand(200, 200))
        result = await ex3
        assert result.nb_layers == 12


async def test_lazy_upstream_is_started_by_the_downstream(echo_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        up = d.add(1, 2)
        down = d.add(up, 10)
        assert await down == 13
        assert up.started and await up == 3


async def test_failed_upstream_fails_downstream_naming_it(daisi_runtime: LocalRuntime) -> None:
    async with (
        AsyncDaisi("Always Fails", base_url=daisi_runtime.url) as fails,
        AsyncDaisi("Add Two Numbers", base_url=daisi_runtime.url) as add,
    ):
        up = await fails.divide_(1, 0)
        with pytest.raises(DaisiExecutionError) as info:
            await add.compute(up, 1)
        assert info.value.exc_type == "daisi.UpstreamFailed"
        assert up.id is not None and up.id in str(info.value)
