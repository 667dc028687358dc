"""The seed documentation's examples, run with the ORIGINAL ``pydaisi==0.3.3.0`` client.

The client is unchanged: it finds the local runtime through ``DAISI_BASE_URL`` and
speaks the legacy routes only. Custom classes must travel by value as classes defined
in ``__main__`` do, so that part runs as a script in a subprocess.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from daisi_async.testing import LocalRuntime

pyd = pytest.importorskip("pydaisi")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "daisies"


@pytest.fixture(scope="module")
def runtime() -> Iterator[LocalRuntime]:
    # Our own runtime: the worker-pool tests below resize pools.
    with LocalRuntime(EXAMPLES) as rt:
        yield rt


@pytest.fixture(autouse=True)
def base_url(runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DAISI_BASE_URL", runtime.url)
    monkeypatch.delenv("DAISI_ACCESS_TOKEN", raising=False)
    return runtime.url


def test_synchronous_call() -> None:
    classify = pyd.Daisi("Zero Shot Text Classification")
    result = classify.compute(text="Let's go the moon", candidate_labels="astronomy, travel").value
    assert result["labels"][0] == "astronomy"
    assert result["labels"] == ["astronomy", "travel"]
    assert result["sequence"] == "Let's go the moon"
    assert abs(sum(result["scores"]) - 1) < 1e-9

    with pyd.Daisi("Add Two Numbers") as my_daisi:
        assert my_daisi.compute(firstNumber=5, secondNumber=6).value == 11


def test_execution_status() -> None:
    with pyd.Daisi("Add Two Numbers") as my_daisi:
        de = my_daisi.compute(firstNumber=5, secondNumber=6)
        assert de.status == "NOT_STARTED"
        de.start()
        assert de.status in ("RUNNING", "FINISHED")
        assert de.value == 11
        assert de.status == "FINISHED"


def test_live_logs() -> None:
    with pyd.Daisi("Live Logging") as my_daisi:
        de = my_daisi.live_log_test(firstNumber=5, secondNumber=6, delay=3)
        de.start()
        time.sleep(2)
        logs = de.logs
        assert de.status == "RUNNING"
        assert de.value == 11
        final = de.logs
    assert 0 < len(logs) < len(final)
    assert final[: len(logs)] == logs
    assert "adding 5 and 6 over 3 seconds" in logs[0]
    assert "Step 1/6: 0.5 s elapsed" in logs
    assert final[-1] == "Done: 5 + 6 = 11"
    assert len(final) == 8


def test_traceback_in_value() -> None:
    d = pyd.Daisi("Always Fails")
    de = d.divide(numerator=1, denominator=0)
    with pytest.raises(ValueError) as info:
        _ = de.value
    text = str(info.value)
    assert "ZeroDivisionError" in text
    assert str(EXAMPLES / "always-fails" / "app.py") in text
    assert "Traceback (most recent call last)" in text
    assert de.status == "FAILED"


def test_print_hello_asynchronous() -> None:
    greeting = pyd.Daisi("Print Hello")
    async_exec = greeting.hello(name="World")
    async_exec.start()
    assert async_exec.status in ("RUNNING", "FINISHED")
    assert async_exec.value == "Hello World!"
    assert async_exec.status == "FINISHED"
    assert async_exec.logs == ["Hello World!"]


SERIALIZE_SCRIPT = """
import pydaisi as pyd
import numpy as np

# Connect to the "Daisi Serialize" Daisi
daisi_serialize = pyd.Daisi("exampledaisies/Daisi Serialize")


# Class definition (in __main__, so it travels by value)
class MapStack:
    def __init__(self, nx, ny):
        self.nx = nx
        self.ny = ny
        self.nb_layers = None
        self.maps = []

    def add_layer(self, map):
        if len(map.shape) == 2 and map.shape[0] == self.ny and map.shape[1] == self.nx:
            self.maps.append(map)
            self.nb_layers = len(self.maps)
            return "Map successfully added."
        else:
            return "Could not add map. Incompatible dimensions."

    def marker(self):
        return "defined only in the client script"


nx = 200
ny = 200
ms = MapStack(nx, ny)
for i in range(10):
    ms.add_layer(np.random.rand(nx, ny))

# As in the documentation: a 1-D map does not fit, the stack comes back unchanged.
d_execution = daisi_serialize.compute(map_stack=ms, map=np.random.rand(nx,)).value
assert d_execution.nb_layers == 10, d_execution.nb_layers
assert type(d_execution).__name__ == "MapStack"
assert d_execution.marker() == "defined only in the client script"
print("same-stack", d_execution.nb_layers)

# A 2-D map fits: one more layer.
grown = daisi_serialize.compute(map_stack=ms, map=np.random.rand(ny, nx)).value
print("grown", grown.nb_layers, np.array_equal(grown.maps[3], ms.maps[3]))

# Remote results: chain an execution into the next call ("lookup:<id>").
d = pyd.Daisi("Daisi Serialize")
e1 = d.compute(map_stack=ms, map=np.random.rand(ny, nx))
e1.start()
e2 = d.compute(map_stack=e1, map=np.random.rand(ny, nx))
result = e2.value
assert result.nb_layers == 12, result.nb_layers
print("chained", result.nb_layers, e2.parsed_args["map_stack"] == "lookup:" + e1.id)
"""


def test_custom_objects_and_remote_results(base_url: str, tmp_path: Path) -> None:
    script = tmp_path / "seed_serialize.py"
    script.write_text(textwrap.dedent(SERIALIZE_SCRIPT))
    proc = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout.splitlines()
    assert "same-stack 10" in out
    assert "grown 11 True" in out
    assert "chained 12 True" in out


def test_positional_arguments() -> None:
    d = pyd.Daisi("Add Two Numbers")
    assert d.compute(5, 6).value == 11
    assert d.compute(5, secondNumber=7).value == 12


def test_run_parallel() -> None:
    d = pyd.Daisi("Add Two Numbers")
    results = pyd.Daisi.run_parallel(
        d.compute(firstNumber=1, secondNumber=2),
        d.compute(firstNumber=3, secondNumber=4),
        d.compute(firstNumber=5, secondNumber=6),
    )
    assert results == [3, 7, 11]


def test_map() -> None:
    d = pyd.Daisi("Add Two Numbers")
    args = [{"firstNumber": i, "secondNumber": 10 * i} for i in range(5)]
    dme = d.map(func="compute", args_list=args)
    values = dme.value
    assert isinstance(values, dict) and len(values) == 5
    expected = {de.id: 11 * i for i, de in enumerate(dme.executions)}
    assert values == expected
    assert all(uuid.UUID(k) for k in values)


def test_lookup_by_uuid_and_get_daisies(base_url: str) -> None:
    by_name = pyd.Daisi("Print Hello")
    by_id = pyd.Daisi(by_name.id)
    assert by_id.id == by_name.id and by_id.name == "Print Hello"
    assert set(by_id.endpoints) == {"hello"}
    assert by_id.hello(name="Daisi").value == "Hello Daisi!"

    daisies = pyd.Daisi.get_daisies(base_url=base_url)
    names = [d["name"] for d in daisies]
    assert names == sorted(names)
    assert {
        "Add Two Numbers",
        "Always Fails",
        "Daisi Serialize",
        "Live Logging",
        "Print Hello",
        "Titanic Statistics",
        "Zero Shot Text Classification",
    } <= set(names)
    assert {"id": by_name.id, "name": "Print Hello", "description": "Says hello."} in daisies

    with pytest.raises(ValueError):
        pyd.Daisi("No Such Daisi Anywhere")
    with pytest.raises(ValueError):
        pyd.Daisi(str(uuid.uuid4()))


def test_workers() -> None:
    d = pyd.Daisi("Print Hello")
    assert d.workers.number == 1
    assert d.workers.status == "ready_to_update"
    assert "2" in d.workers.set(2)
    deadline = time.monotonic() + 10
    while d.workers.number != 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    while d.workers.status != "ready_to_update":
        assert time.monotonic() < deadline, d.workers.status
        time.sleep(0.05)
    assert d.workers.number == 2
    # Two workers run two executions side by side.
    results = pyd.Daisi.run_parallel(d.hello(name="A"), d.hello(name="B"))
    assert results == ["Hello A!", "Hello B!"]
    d.workers.set(1)
