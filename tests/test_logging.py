"""The ``daisi_async`` logger: silent by default; tells about retries (with their cause),
the protocol chosen, fallbacks, and event streams dropped and resumed."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import anyio
import pytest
import sniffio
from tests.conftest import TEST_DAISIES

from daisi_async import AsyncDaisi, RetryPolicy
from daisi_async.testing import LocalRuntime
from support.faultproxy import FaultProxy, drop_mid_stream, status

POLICY = RetryPolicy(attempts=4, backoff=0.01, max_backoff=0.05)

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def legacy_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    with LocalRuntime(
        TEST_DAISIES, legacy_only=True, store=tmp_path_factory.mktemp("legacy-logging")
    ) as rt:
        yield rt


def _messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "daisi_async" and r.levelno == level
    ]


def test_silent_by_default() -> None:
    logger = logging.getLogger("daisi_async")
    assert any(isinstance(h, logging.NullHandler) for h in logger.handlers)
    assert logger.level == logging.NOTSET  # the application decides what it sees


async def test_the_protocol_chosen(
    echo_runtime: LocalRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="daisi_async")
    async with AsyncDaisi("Echo", base_url=echo_runtime.url):
        pass
    assert f"using the v1 protocol of {echo_runtime.url}" in _messages(caplog, logging.INFO)


async def test_the_fallback_to_legacy_routes(
    legacy_runtime: LocalRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="daisi_async")
    async with AsyncDaisi("Echo", base_url=legacy_runtime.url) as d:
        assert d.protocol == "legacy"
    infos = _messages(caplog, logging.INFO)
    assert any("capabilities answered 404" in m and "legacy (pydaisi) routes" in m for m in infos)


async def test_a_retry_with_its_cause(
    echo_runtime: LocalRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="daisi_async")
    with FaultProxy(echo_runtime.url) as proxy:
        proxy.add_rule(method="GET", path_contains="/v1/daisies/", action=status(503))
        with anyio.fail_after(20):
            async with AsyncDaisi("Echo", base_url=proxy.url, retries=POLICY) as d:
                assert await d.echo(1) == 1
    (warning,) = _messages(caplog, logging.WARNING)
    assert warning.startswith(f"retrying GET {proxy.url}/pebble-api/v1/daisies/Echo in ")
    assert "(attempt 1 of 4 failed: RetryableStatus: HTTP 503)" in warning


async def test_a_dropped_and_resumed_event_stream(
    echo_runtime: LocalRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="daisi_async")
    with FaultProxy(echo_runtime.url) as proxy:
        proxy.add_rule(method="GET", path_contains="/events", action=drop_mid_stream(after_lines=4))
        with anyio.fail_after(30):
            async with AsyncDaisi("Echo", base_url=proxy.url, retries=POLICY) as d:
                ex = await d.sleep_(0.5, lines=3)
                assert [line async for line in ex.logs()] == ["line 0", "line 1", "line 2"]
    warnings = _messages(caplog, logging.WARNING)
    dropped = f"retrying the event stream of execution {ex.id}"
    assert any(
        m.startswith(dropped) and ("ReadError" in m or "RemoteProtocolError" in m) for m in warnings
    ), warnings
    infos = _messages(caplog, logging.INFO)
    assert any(
        m.startswith(f"resuming the event stream of execution {ex.id} after event ") for m in infos
    )


async def test_the_fallback_without_background_tasks(
    echo_runtime: LocalRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    """``AsyncDaisi.connect()`` on trio has no task group to batch in: said once."""
    caplog.set_level(logging.INFO, logger="daisi_async")
    d = await AsyncDaisi.connect("Echo", base_url=echo_runtime.url)
    try:
        assert [await d.echo(i) for i in range(3)] == [0, 1, 2]
    finally:
        await d.aclose()
    fallbacks = [m for m in _messages(caplog, logging.INFO) if "no background tasks" in m]
    if sniffio.current_async_library() == "trio":
        assert fallbacks.count("no background tasks here: one request per submission") == 1
        assert fallbacks.count("no background tasks here: one long-poll per wait") == 1
    else:  # asyncio: background tasks on the running loop
        assert fallbacks == []
