"""The client against a server without the v1 extensions: legacy routes and polling."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from tests.conftest import TEST_DAISIES

from daisi_async import AsyncDaisi, DaisiError, ExecutionStatus
from daisi_async._dialects.legacy import error_from_traceback
from daisi_async.testing import LocalRuntime

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def legacy_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    with LocalRuntime(
        TEST_DAISIES, legacy_only=True, store=tmp_path_factory.mktemp("legacy-store")
    ) as rt:
        yield rt


async def test_falls_back_and_calls(legacy_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Echo", base_url=legacy_runtime.url) as d:
        assert d.protocol == "legacy"
        assert await d.add(1, 2) == 3
        assert await d.echo((1, {2})) == (1, {2})
        assert await d.echo("lookup:literal") == "lookup:literal"
        arr = np.arange(10.0)
        assert np.array_equal(await d.echo(arr), arr)


async def test_strings_that_are_not_unicode_round_trip(legacy_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Echo", base_url=legacy_runtime.url) as d:
        for value in ["a\ud800b", ["\udc80", "ok"], {"k\udfff": "\ud83d\ude00"}]:
            back = await d.echo(value)
            assert back == value and type(back) is type(value)
        assert await d.text([97, 0xD800, 98]) == "a\ud800b"
        assert await d.echo("caf\u00e9") == "caf\u00e9"


async def test_status_logs_and_chaining(legacy_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Echo", base_url=legacy_runtime.url) as d:
        ex = await d.sleep_(0.4, lines=2)
        statuses = [s async for s in ex.status()]
        assert statuses[-1] is ExecutionStatus.FINISHED
        assert await ex.logs() == ["line 0", "line 1"]
        live = await d.sleep_(0.4, lines=3)
        assert [line async for line in live.logs()] == ["line 0", "line 1", "line 2"]
        up = d.add(1, 2)
        assert await d.add(up, 10) == 13


async def test_failure_and_gather(legacy_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Echo", base_url=legacy_runtime.url) as d:
        with pytest.raises(TypeError) as info:
            await d.add("x", 1)
        assert "can only concatenate" in str(info.value)
        values = await d.map("add", [(i, 1) for i in range(40)], max_concurrency=20)
        assert values == [i + 1 for i in range(40)]
        ex = await d.sleep_(5)
        with pytest.raises(DaisiError, match="cancel"):
            await ex.cancel()


def test_error_from_traceback() -> None:
    tb = "Traceback (most recent call last):\n  File x\nZeroDivisionError: division by zero\n"
    assert error_from_traceback(tb)["type"] == "builtins.ZeroDivisionError"
    assert error_from_traceback(tb)["message"] == "division by zero"
    assert error_from_traceback("mod.Err: boom")["type"] == "mod.Err"
