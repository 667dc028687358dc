"""The daisi-async quick start (`make demo`).

Starts the local Daisi runtime on examples/daisies (unless DAISI_BASE_URL points at
one already), then shows the blocking facade and the async client at work.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import numpy as np

from daisi_async import AsyncDaisi, Daisi, DaisiExecutionError
from daisi_async.testing import LocalRuntime

HERE = Path(__file__).resolve().parent


class MapStack:
    """Defined here, in __main__: it travels to the Daisi by value."""

    def __init__(self, nx: int, ny: int) -> None:
        self.nx = nx
        self.ny = ny
        self.nb_layers: int | None = None
        self.maps: list[np.ndarray] = []

    def add_layer(self, map: np.ndarray) -> str:
        if map.shape == (self.ny, self.nx):
            self.maps.append(map)
            self.nb_layers = len(self.maps)
            return "Map successfully added."
        return "Could not add map. Incompatible dimensions."


def section(title: str) -> None:
    print(f"\n── {title} " + "─" * max(0, 66 - len(title)))


def scripts_and_notebooks() -> None:
    section("1. A synchronous call")
    with Daisi("Add Two Numbers") as d:
        de = d.compute(firstNumber=5, secondNumber=6)
        print(f"de.status -> {de.status}")
        print(f"de.value  -> {de.value}")
        print(f"de.status -> {de.status}")

    section("2. Live logs: .start(), then .logs while it runs")
    live = Daisi("Live Logging").live_log_test(firstNumber=5, secondNumber=6, delay=3)
    live.start()
    time.sleep(1.2)
    print(f"after 1.2 s, de.logs -> {live.logs}")
    for line in live.stream_logs():
        print(f"  live | {line}")
    print(f"value -> {live.value}")

    section("3. A remote traceback")
    try:
        Daisi("Always Fails").divide(numerator=1, denominator=0).value
    except ZeroDivisionError as exc:  # the remote class, and a DaisiExecutionError
        assert isinstance(exc, DaisiExecutionError)
        print(exc.traceback.rstrip())

    section("4. A custom object defined in __main__")
    serialize = Daisi("exampledaisies/Daisi Serialize")
    stack = MapStack(200, 200)
    for _ in range(10):
        stack.add_layer(np.random.rand(200, 200))
    back = serialize.compute(map_stack=stack, map=np.random.rand(200, 200)).value
    print(f"sent 10 layers, got a {type(back).__name__} with {back.nb_layers} layers")

    section("5. Remote results: chain without downloading")
    first = serialize.compute_(map_stack=stack, map=np.random.rand(200, 200))
    second = serialize.compute_(map_stack=first, map=np.random.rand(200, 200))
    print(f"first={first.id} is passed by reference; second.value.nb_layers -> ", end="")
    print(second.value.nb_layers)


async def async_fan_out() -> None:
    section("6. Async fan-out: 1,000 calls with asyncio.gather")
    async with AsyncDaisi("Add Two Numbers") as d:
        await d.compute(0, 0)  # warm up
        t0 = time.perf_counter()
        totals = await asyncio.gather(*(d.compute(i, 1) for i in range(1000)))
        dt = time.perf_counter() - t0
    assert totals == [i + 1 for i in range(1000)]
    print(f"1,000 executions in {dt:.2f} s -> {1000 / dt:,.0f} executions/s, all correct")


def main() -> None:
    if os.environ.get("DAISI_BASE_URL"):
        scripts_and_notebooks()
        asyncio.run(async_fan_out())
        return
    with LocalRuntime(HERE / "daisies") as runtime:
        print(f"Local Daisi runtime serving examples/daisies at {runtime.url}")
        os.environ["DAISI_BASE_URL"] = runtime.url
        scripts_and_notebooks()
        asyncio.run(async_fan_out())
    print("\nRuntime stopped. Next: `make test`, or `daisi serve examples/daisies`.")


if __name__ == "__main__":
    main()
