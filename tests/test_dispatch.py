"""Slots and signals, the one-shot values and wake-ups every call waits on, on asyncio
(plain futures) and trio (anyio's events)."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from daisi_async._dispatch import Signal, Slot, _FutureEvent, _new_event

pytestmark = pytest.mark.anyio


async def test_an_event_is_plain_futures_on_asyncio_only(anyio_backend: str) -> None:
    event = _new_event()
    if anyio_backend == "asyncio":
        assert isinstance(event, _FutureEvent)  # no async-library lookup per call
    else:
        assert isinstance(event, anyio.Event)


async def test_every_waiter_gets_the_value_and_a_cancelled_one_leaves_the_rest() -> None:
    slot: Slot[int] = Slot()
    got: list[int] = []
    scopes: list[anyio.CancelScope] = []

    async def waiter() -> None:
        got.append(await slot.wait())

    async def cancelled_waiter() -> None:
        with anyio.CancelScope() as scope:
            scopes.append(scope)
            await slot.wait()
        got.append(-1)  # it stopped waiting, with nothing delivered

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(waiter)
        tg.start_soon(cancelled_waiter)
        await anyio.wait_all_tasks_blocked()
        scopes[0].cancel()  # while it waits, among the others
        await anyio.wait_all_tasks_blocked()
        assert got == [-1]
        slot.set(7)
        slot.set(8)  # later deliveries are ignored
    assert got == [-1, 7, 7, 7]
    assert await slot.wait() == 7  # and a late waiter gets it at once


async def test_a_failure_reaches_every_waiter() -> None:
    slot: Slot[int] = Slot()
    errors: list[BaseException] = []

    async def waiter() -> None:
        try:
            await slot.wait()
        except LookupError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        slot.fail(LookupError("gone"))
    assert [str(e) for e in errors] == ["gone", "gone"]
    with pytest.raises(LookupError):
        await slot.wait()


async def test_a_signal_wakes_its_current_waiters_then_rearms() -> None:
    signal = Signal()
    woken: list[str] = []

    async def waiter(name: str) -> None:
        await signal.wait()
        woken.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter, "a")
        tg.start_soon(waiter, "b")
        await anyio.wait_all_tasks_blocked()
        signal.fire()
        await anyio.wait_all_tasks_blocked()
        assert sorted(woken) == ["a", "b"]
        tg.start_soon(waiter, "c")  # waits for the next fire, not the last one
        await anyio.wait_all_tasks_blocked()
        assert "c" not in woken
        signal.fire()
    assert sorted(woken) == ["a", "b", "c"]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_cancelled_wait_leaves_no_future_behind(anyio_backend: str) -> None:
    event = _FutureEvent()
    for _ in range(50):
        task = asyncio.ensure_future(event.wait())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert event._first is None and not event._more
    event.set()
    await event.wait()  # set: returns at once


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_an_event_wakes_every_waiter_but_those_that_stopped(anyio_backend: str) -> None:
    event = _FutureEvent()
    woken: list[int] = []

    async def waiter(n: int) -> None:
        await event.wait()
        woken.append(n)

    tasks = [asyncio.ensure_future(waiter(n)) for n in range(4)]
    await asyncio.sleep(0)
    tasks[0].cancel()  # the first waiter (kept apart from the others) stops
    tasks[2].cancel()
    await asyncio.sleep(0)
    assert event._first is None and event._more is not None and len(event._more) == 2
    event.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert sorted(woken) == [1, 3]
    assert event._first is None and event._more is None
