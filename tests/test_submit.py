"""How submissions travel (``_dialects/v1/submit.py``), seen through a recording proxy:
calls started together share a batch stream; a lone call whose end is awaited at once
is one request to the one-execution route, which may wait a moment for the end."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from daisi_async import AsyncDaisi, AsyncDaisiExecution, DaisiNotFoundError, RetryPolicy
from daisi_async._dialects.v1.submit import LINGER
from daisi_async.testing import LocalRuntime
from support.faultproxy import FaultProxy, drop_mid_stream, status
from support.v1_calls import count_executions

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "daisies"
POLICY = RetryPolicy(attempts=6, backoff=0.01, max_backoff=0.1)
LONE = r"/v1/daisies/[^/]+/executions$"
BATCH = r"/v1/executions$"
WAIT = "/v1/executions/wait"
NOT_FOUND = {"error": {"status": 404, "code": "not_found", "message": "no such Daisi"}}
REFUSAL = status(404, {"content-type": "application/json"}, json.dumps(NOT_FOUND).encode())


@pytest.fixture(scope="module")
def runtime() -> Iterator[LocalRuntime]:
    with LocalRuntime(EXAMPLES, workers=2) as rt:
        yield rt


@pytest.fixture
def proxy(runtime: LocalRuntime) -> Iterator[FaultProxy]:
    with FaultProxy(runtime.url) as p:
        yield p


def client(url: str, name: str = "Add Two Numbers") -> AsyncDaisi:
    return AsyncDaisi(name, base_url=url, retries=POLICY)


async def test_an_awaited_lone_call_is_one_request(
    runtime: LocalRuntime, proxy: FaultProxy
) -> None:
    before = count_executions(runtime)
    with anyio.fail_after(20):
        async with client(proxy.url) as d:
            assert await d.compute(4, 5) == 9
            assert await d.compute(firstNumber=1, secondNumber=1).result() == 2
    assert count_executions(runtime) == before + 2
    lone = proxy.matching("POST", path_regex=LONE)
    assert len(lone) == 2
    assert proxy.count("POST", path_regex=BATCH) == 0
    unfinished = 0  # a busy host may not end the run within the linger
    for entry in lone:
        assert f"wait={LINGER:g}" in entry.target
        assert entry.headers.get("idempotency-key")
        assert set(json.loads(entry.body)) == {"endpoint", "arguments"}
        reply = json.loads(entry.reply)
        if reply["status"] == "FINISHED":
            assert reply["result"] is not None  # the value came with the reply
        else:
            unfinished += 1
    # Only a reply that was not final is followed by a wait for the end.
    waits = proxy.count("POST", WAIT)
    assert waits == 0 if unfinished == 0 else waits >= 1


async def test_a_lone_call_dropped_mid_reply_is_resent_with_its_key(
    runtime: LocalRuntime, proxy: FaultProxy
) -> None:
    proxy.add_rule(method="POST", path_regex=LONE, action=drop_mid_stream(10))
    before = count_executions(runtime)
    with anyio.fail_after(20):
        async with client(proxy.url) as d:
            assert await d.compute(5, 6) == 11
    assert count_executions(runtime) == before + 1  # the server made it once
    sent = proxy.matching("POST", path_regex=LONE)
    assert len(sent) == 2
    assert sent[0].headers["idempotency-key"] == sent[1].headers["idempotency-key"]


async def test_a_lone_call_longer_than_the_linger_is_answered_then_waited_for(
    runtime: LocalRuntime, proxy: FaultProxy
) -> None:
    before = count_executions(runtime)
    with anyio.fail_after(20):
        async with client(proxy.url, "Live Logging") as d:
            ex = d.live_log_test(1, 2, delay=0.5)
            assert await ex == 3
            assert ex.id is not None and ex.last_status.value == "FINISHED"
    assert count_executions(runtime) == before + 1
    [lone] = proxy.matching("POST", path_regex=LONE)
    assert lone.status == 201  # answered while the run went on
    assert proxy.count("POST", WAIT) >= 1  # its end came by the wait stream


async def test_calls_started_together_or_started_first_use_the_batch_stream(
    runtime: LocalRuntime, proxy: FaultProxy
) -> None:
    with anyio.fail_after(20):
        async with client(proxy.url) as d:
            three = [d.compute(i, 1) for i in range(3)]
            async with anyio.create_task_group() as tg:
                for ex in three:
                    tg.start_soon(ex.result)
            assert [await ex for ex in three] == [1, 2, 3]
            ex = d.compute(2, 2)
            await ex.start()  # an explicit start: acknowledged at once, as before
            assert await ex == 4
    assert proxy.count("POST", path_regex=LONE) == 0
    assert proxy.count("POST", path_regex=BATCH) == 2


async def test_a_lone_call_that_is_refused_raises_its_typed_error_once(
    runtime: LocalRuntime, proxy: FaultProxy
) -> None:
    proxy.add_rule(method="POST", path_regex=LONE, action=REFUSAL)
    with anyio.fail_after(20):
        async with client(proxy.url) as d:
            with pytest.raises(DaisiNotFoundError, match="no such Daisi"):
                await d.compute(1, 2)
    assert proxy.count("POST", path_regex=LONE) == 1  # a 404 is not retried


async def test_tasks_starting_one_call_together_share_its_refusal_then_it_can_start_again(
    runtime: LocalRuntime, proxy: FaultProxy
) -> None:
    proxy.add_rule(method="POST", path_regex=BATCH, action=REFUSAL)
    failures: list[BaseException] = []

    async def start(ex: AsyncDaisiExecution) -> None:
        try:
            await ex.start()
        except DaisiNotFoundError as exc:
            failures.append(exc)

    with anyio.fail_after(20):
        async with client(proxy.url) as d:
            ex = d.compute(2, 3)
            async with anyio.create_task_group() as tg:
                for _ in range(3):
                    tg.start_soon(start, ex)
            assert len(failures) == 3 and ex.id is None  # one request, its error for all
            assert proxy.count("POST", path_regex=BATCH) == 1
            assert await ex.start() is not None  # the rule is spent: this one is made
            assert await ex == 5
