"""AsyncDaisi: connecting, endpoints as attributes, argument binding, catalogue, workers."""

from __future__ import annotations

import inspect

import httpx
import pytest

from daisi_async import (
    AsyncDaisi,
    AsyncDaisiExecution,
    DaisiAuthenticationError,
    DaisiNotFoundError,
    ExecutionStatus,
)
from daisi_async.testing import LocalRuntime

pytestmark = pytest.mark.anyio


async def test_connect_by_name_owner_and_id(daisi_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Add Two Numbers", base_url=daisi_runtime.url) as d:
        assert d.name == "Add Two Numbers"
        assert d.endpoints == ["compute"]
        assert d.protocol == "v1"
        daisi_id = d.id
    async with AsyncDaisi("exampledaisies/daisi serialize", base_url=daisi_runtime.url) as d:
        assert d.name == "Daisi Serialize"
    async with AsyncDaisi(daisi_id, base_url=daisi_runtime.url) as d:
        assert d.name == "Add Two Numbers"
        assert await d.compute(1, 2) == 3


async def test_connect_classmethod_and_aclose(daisi_runtime: LocalRuntime) -> None:
    d = await AsyncDaisi.connect("Print Hello", base_url=daisi_runtime.url)
    try:
        assert await d.hello(name="World") == "Hello World!"
    finally:
        await d.aclose()


async def test_unknown_daisi_is_not_found(daisi_runtime: LocalRuntime) -> None:
    with pytest.raises(DaisiNotFoundError, match="No Such Daisi"):
        async with AsyncDaisi("No Such Daisi", base_url=daisi_runtime.url):
            pass


async def test_endpoint_signature_doc_and_dir(echo_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        sig = inspect.signature(d.add)
        assert list(sig.parameters) == ["a", "b", "rest", "scale", "extra"]
        assert sig.parameters["b"].default == 1
        assert sig.parameters["rest"].kind is inspect.Parameter.VAR_POSITIONAL
        assert sig.parameters["scale"].kind is inspect.Parameter.KEYWORD_ONLY
        assert "sum(rest)" in (d.add.__doc__ or "")
        assert d.add.__name__ == "add"
        assert {"add", "add_", "echo", "sleep"} <= set(dir(d))
        assert inspect.iscoroutinefunction(d.add_)
        with pytest.raises(AttributeError, match="no endpoint 'nope'"):
            _ = d.nope


async def test_positional_varargs_and_kwargs_bind_like_a_local_call(
    echo_runtime: LocalRuntime,
) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        assert await d.add(1, 2) == 3
        assert await d.add(1, 2, 3, 4) == 10
        assert await d.add(1, 2, scale=2) == 6
        assert await d.add(1, 2, colour="red") == {"total": 3, "extra": {"colour": "red"}}


# Local twins of the Echo Daisi's endpoints: a wrong call must fail with the same words.
def echo(value: object) -> None: ...
def sleep(seconds: float = 1.0, lines: int = 0) -> None: ...
def add(a: object, b: object = 1, *rest: object, scale: float = 1.0, **extra: object) -> None: ...


WRONG_CALLS = [
    (echo, (), {}),
    (echo, (1,), {"bogus": 2}),
    (echo, (), {"valeu": 1}),  # misspelt: "unexpected keyword", not "missing 'value'"
    (sleep, (1, 2, 3), {}),
    (add, (), {"b": 2}),
    (add, (1,), {"a": 2}),
    (add, (), {"scale": 2}),
]


def _local_error(fn: object, args: tuple[object, ...], kwargs: dict[str, object]) -> str:
    with pytest.raises(TypeError) as info:
        fn(*args, **kwargs)  # type: ignore[operator]
    return str(info.value)


async def test_wrong_arguments_raise_type_error_before_sending(echo_runtime: LocalRuntime) -> None:
    """The TypeError of a wrong call reads exactly as a local call's, and nothing is sent."""
    sent: list[str] = []

    async def record(request: httpx.Request) -> None:
        sent.append(f"{request.method} {request.url.path}")

    async with httpx.AsyncClient(event_hooks={"request": [record]}) as client:
        async with AsyncDaisi("Echo", base_url=echo_runtime.url, client=client) as d:
            before = list(sent)
            for fn, args, kwargs in WRONG_CALLS:
                name = fn.__name__  # type: ignore[attr-defined]
                expected = _local_error(fn, args, kwargs)
                with pytest.raises(TypeError) as info:
                    getattr(d, name)(*args, **kwargs)
                assert str(info.value) == expected
                with pytest.raises(TypeError) as info:
                    await getattr(d, name + "_")(*args, **kwargs)
                assert str(info.value) == expected
                if not (args and kwargs):  # a map item is one or the other
                    with pytest.raises(TypeError) as info:
                        d.map(name, [kwargs or args])
                    assert str(info.value) == expected
            assert sent == before
            assert await d.add(1, scale=2) == 4  # the next good call works
        assert not client.is_closed  # an injected client is not closed


async def test_a_keyword_name_that_is_not_unicode(echo_runtime: LocalRuntime) -> None:
    """A name can't travel as text: refused before anything is sent."""
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        with pytest.raises(ValueError, match="not valid Unicode"):
            d.add(1, 2, **{"k\ud800": 3})
        assert await d.add(1, 2, **{"caf\u00e9": 3}) == {"total": 3, "extra": {"caf\u00e9": 3}}


async def test_lazy_call_and_submit_now(echo_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        ex = d.echo(5)
        assert isinstance(ex, AsyncDaisiExecution)
        assert not ex.started
        assert await ex.status() is ExecutionStatus.NOT_STARTED
        started = await d.echo_(6)
        assert started.started and started.id
        assert await started == 6
        assert await ex == 5 and ex.started


async def test_generic_call_and_submit(echo_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        assert await d.call("echo", "x") == "x"
        ex = await d.submit("echo", value=[1, 2])
        assert await ex == [1, 2]
        with pytest.raises(DaisiNotFoundError):
            d.call("missing")


async def test_env_settings(daisi_runtime: LocalRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAISI_BASE_URL", daisi_runtime.url)
    async with AsyncDaisi("Add Two Numbers") as d:
        assert await d.compute(2, 2) == 4


async def test_injected_client_with_base_url(daisi_runtime: LocalRuntime) -> None:
    async with httpx.AsyncClient() as client:
        async with AsyncDaisi("Add Two Numbers", base_url=daisi_runtime.url, client=client) as d:
            assert await d.compute(3, 4) == 7
        assert not client.is_closed


async def test_catalogue(daisi_runtime: LocalRuntime) -> None:
    daisies = await AsyncDaisi.list(base_url=daisi_runtime.url)
    names = [d["name"] for d in daisies]
    assert names == sorted(names, key=str.lower)
    assert {"Add Two Numbers", "Live Logging", "Daisi Serialize"} <= set(names)


async def test_workers(daisi_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Titanic Statistics", base_url=daisi_runtime.url) as d:
        assert await d.workers.number() == 1
        await d.workers.set(2)
        assert await d.workers.number() == 2
        assert await d.workers.status() in {"ready_to_update", "increasing"}
        await d.workers.set(1)


async def test_bad_token_is_an_authentication_error(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with LocalRuntime(
        "tests/daisies", tokens={"good": "alice"}, store=tmp_path_factory.mktemp("store")
    ) as rt:
        with pytest.raises(DaisiAuthenticationError):
            async with AsyncDaisi("Echo", base_url=rt.url, access_token="bad"):
                pass
        async with AsyncDaisi("Echo", base_url=rt.url, access_token="good") as d:
            assert await d.echo(1) == 1


async def test_bad_worker_numbers_are_refused_before_sending(echo_runtime: LocalRuntime) -> None:
    async with AsyncDaisi("Echo", base_url=echo_runtime.url) as d:
        before = await d.workers.number()
        with pytest.raises(ValueError, match="number must be >= 0"):
            await d.workers.set(-1)
        for bad in ("2", 1.5, True, None):
            with pytest.raises(TypeError, match="number must be an int"):
                await d.workers.set(bad)  # type: ignore[arg-type]
        assert await d.workers.number() == before
