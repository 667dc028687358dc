"""Settings: every bad base URL, timeout, retry count or token is refused at construction.

Nothing here needs a server: a ``ValueError`` / ``TypeError`` raised by the constructor
itself (no ``await``) proves that nothing was sent.
"""

from __future__ import annotations

import math

import httpx
import pytest

from daisi_async import AsyncDaisi, Daisi, RetryPolicy, _portal
from daisi_async._config import Settings, check_timeout

BAD_URLS = [
    ("http://127.0.0.1:99999", "port"),
    ("http://127.0.0.1:0", "port"),
    ("http://[::1", "parse"),
    ("http://localhost:8a", "parse"),
    ("ftp://example.org", "scheme"),
    ("127.0.0.1:8421", "scheme"),
    ("localhost", "scheme"),
    ("http://", "host"),
    ("http://:8421", "host"),
    ("http://bad host:8421", "host"),
    ("http://example.org/?q=1", "query"),
    ("http://example.org/#top", "fragment"),
    ("http://a\ud800b", "Unicode"),
    ("", "empty"),
]


@pytest.mark.parametrize(("url", "reason"), BAD_URLS, ids=[u for u, _ in BAD_URLS])
def test_bad_base_url_is_a_value_error_naming_it(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as info:
        AsyncDaisi("Echo", base_url=url)
    assert repr(url.strip()) in str(info.value) or url == ""
    assert type(info.value) is ValueError


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999", "http://[::1"])
def test_bad_base_url_everywhere(url: str) -> None:
    """The sync face and both catalogue calls check before starting anything."""
    had_loop = _portal.loop_thread() is not None
    with pytest.raises(ValueError, match="base_url"):
        Daisi("Echo", base_url=url)
    with pytest.raises(ValueError, match="base_url"):
        Daisi.get_daisies(base_url=url)
    assert (_portal.loop_thread() is not None) == had_loop  # no loop thread started


@pytest.mark.anyio
@pytest.mark.parametrize("url", ["http://127.0.0.1:99999", "http://[::1"])
async def test_bad_base_url_for_the_catalogue(url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        await AsyncDaisi.list(base_url=url)


def test_bad_base_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAISI_BASE_URL", "http://127.0.0.1:99999")
    with pytest.raises(ValueError, match="DAISI_BASE_URL") as info:
        AsyncDaisi("Echo")
    assert "99999" in str(info.value)
    # An explicit argument wins over the environment.
    assert Settings.resolve(base_url="http://127.0.0.1:9000").base_url == "http://127.0.0.1:9000"
    monkeypatch.setenv("DAISI_BASE_URL", "")  # empty means unset
    assert Settings.resolve().base_url == "http://127.0.0.1:8421"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:9000/", "http://127.0.0.1:9000"),
        ("  https://[::1]:443/prefix/ \n", "https://[::1]:443/prefix"),
        ("http://user:pw@localhost", "http://user:pw@localhost"),
        ("HTTP://Example.org:1", "HTTP://Example.org:1"),
        ("http://127.0.0.1:65535", "http://127.0.0.1:65535"),
        ("http://my_host.local", "http://my_host.local"),
    ],
)
def test_good_base_urls(url: str, expected: str) -> None:
    assert Settings.resolve(base_url=url).base_url == expected


@pytest.mark.parametrize(
    "timeout", [-5, -0.001, math.nan, -math.inf, 0, httpx.Timeout(-1.0)], ids=repr
)
def test_bad_timeout_is_a_value_error_at_construction(timeout: object) -> None:
    with pytest.raises(ValueError, match="timeout"):
        AsyncDaisi("Echo", timeout=timeout)  # type: ignore[arg-type]
    had_loop = _portal.loop_thread() is not None
    with pytest.raises(ValueError, match="timeout"):
        Daisi("Echo", timeout=timeout)  # type: ignore[arg-type]
    assert (_portal.loop_thread() is not None) == had_loop


def test_bad_fields_of_an_httpx_timeout() -> None:
    with pytest.raises(ValueError, match="read"):
        Settings.resolve(timeout=httpx.Timeout(5.0, read=math.nan))
    with pytest.raises(ValueError, match="pool"):
        Settings.resolve(timeout=httpx.Timeout(5.0, pool=-1))
    # None (no limit) and 0 are httpx's own meanings for one field: kept.
    tmo = Settings.resolve(timeout=httpx.Timeout(5.0, read=None, pool=0)).timeout
    assert tmo.read is None and tmo.pool == 0


@pytest.mark.parametrize("timeout", ["5", True, [1], object()], ids=lambda v: type(v).__name__)
def test_timeout_of_the_wrong_type(timeout: object) -> None:
    with pytest.raises(TypeError, match="timeout"):
        AsyncDaisi("Echo", timeout=timeout)  # type: ignore[arg-type]


def test_good_timeouts() -> None:
    assert Settings.resolve(timeout=2).timeout == httpx.Timeout(2.0)
    assert Settings.resolve(timeout=math.inf).timeout == httpx.Timeout(math.inf)
    assert Settings.resolve().timeout == httpx.Timeout(30.0, connect=10.0)  # None: defaults
    assert check_timeout(None) is None
    assert check_timeout(0) == 0.0
    assert check_timeout(1) == 1.0
    with pytest.raises(ValueError, match=r"timeout must be >= 0 or None, not -1"):
        check_timeout(-1)


@pytest.mark.parametrize(
    ("retries", "error"),
    [(-1, ValueError), (1.5, TypeError), (True, TypeError), ("3", TypeError)],
    ids=repr,
)
def test_bad_retries(retries: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="retries"):
        AsyncDaisi("Echo", retries=retries)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"attempts": 0},
        {"attempts": 2.5},
        {"backoff": -1},
        {"max_backoff": math.nan},
        {"max_retry_after": -0.5},
    ],
    ids=repr,
)
def test_bad_retry_policy(kwargs: dict[str, object]) -> None:
    with pytest.raises((ValueError, TypeError), match=next(iter(kwargs))):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("token", ["caf\u00e9", "a\nb", "a\ud800", "x\x00"], ids=repr)
def test_token_that_cannot_be_a_header(token: str) -> None:
    with pytest.raises(ValueError, match="access_token"):
        AsyncDaisi("Echo", access_token=token)


def test_token_of_the_wrong_type() -> None:
    with pytest.raises(TypeError, match="access_token"):
        AsyncDaisi("Echo", access_token=b"abc")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "error"),
    [("", ValueError), ("a\ud800", ValueError), (123, TypeError), (None, TypeError)],
    ids=repr,
)
def test_bad_daisi_name(name: object, error: type[Exception]) -> None:
    with pytest.raises(error, match="name_or_id"):
        AsyncDaisi(name)  # type: ignore[arg-type]
    with pytest.raises(error, match="name_or_id"):
        Daisi(name)  # type: ignore[arg-type]
