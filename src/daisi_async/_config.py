"""Settings: base URL, token, timeouts and retry policy (arguments win over environment).

Every value is checked here, when the object that uses it is built: a bad one raises
``ValueError`` (or ``TypeError`` for the wrong type) naming it, before anything is sent.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from typing import Any

import httpx

from ._public import public

__all__ = [
    "DEFAULT_BASE_URL",
    "RetryPolicy",
    "Settings",
    "check_base_url",
    "check_text",
    "check_timeout",
    "check_unicode",
]

DEFAULT_BASE_URL = "http://127.0.0.1:8421"
"""Where the local runtime (``daisi serve``) listens by default."""

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)

_HOST = re.compile(r"[A-Za-z0-9._~-]+|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.%A-Za-z]*")
"""A host name (IDNA already encoded), an IPv4 address or an IPv6 address (no brackets)."""
_TOKEN = re.compile(r"[\x21-\x7e]+")
"""What an ``Authorization`` header value can carry: visible ASCII."""


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_timeout(value: Any, *, name: str = "timeout", zero: bool = True) -> float | None:
    """``value`` as seconds: ``None`` (no limit), or a number >= 0 (> 0 unless ``zero``).

    Negative and NaN raise ``ValueError``; anything but a number raises ``TypeError``.

    Example:
        >>> check_timeout(2), check_timeout(None)
        (2.0, None)
        >>> check_timeout(-1)
        Traceback (most recent call last):
        ...
        ValueError: timeout must be >= 0 or None, not -1
    """
    if value is None:
        return None
    if not _is_number(value):
        raise TypeError(f"{name} must be a number of seconds or None, not {type(value).__name__}")
    seconds = float(value)
    if math.isnan(seconds) or seconds < 0 or (seconds == 0 and not zero):
        bound = ">= 0" if zero else "> 0"
        raise ValueError(f"{name} must be {bound} or None, not {value!r}")
    return seconds


def _http_timeout(value: Any) -> httpx.Timeout:
    """The HTTP timeout: ``None`` means the defaults, a number applies to every phase."""
    if value is None:
        return DEFAULT_TIMEOUT
    if isinstance(value, httpx.Timeout):
        for phase in ("connect", "read", "write", "pool"):
            check_timeout(getattr(value, phase), name=f"timeout.{phase}")
        return value
    seconds = check_timeout(value, zero=False)  # 0 would fail every request at once
    return httpx.Timeout(seconds)


def check_unicode(value: str, *, name: str) -> str:
    """``value`` if it is valid Unicode (it travels as UTF-8 text), else ``ValueError``."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"{name} {value!r} is not valid Unicode (a lone surrogate at {exc.start})"
            ) from None
    return value


def check_text(value: Any, *, name: str) -> str:
    """A non-empty ``str`` that is valid Unicode, else ``TypeError`` / ``ValueError``.

    Example:
        >>> check_text("Echo", name="name_or_id")
        'Echo'
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{name} must not be empty")
    return check_unicode(value, name=name)


def check_base_url(url: Any, *, source: str = "base_url") -> str:
    """``url`` without trailing slashes, if it can be a Daisi server's base URL.

    It must parse, use ``http`` or ``https``, name a host, have a port in 1-65535 if
    any, and carry no query or fragment. ``source`` names where the URL came from.

    Example:
        >>> check_base_url("http://127.0.0.1:8421/")
        'http://127.0.0.1:8421'
    """
    if not isinstance(url, str):
        raise TypeError(f"{source} must be a str, not {type(url).__name__}")
    text = url.strip()

    def bad(reason: str) -> ValueError:
        return ValueError(f"{source} {text!r} is not a valid server URL: {reason}")

    if not text:
        raise bad("it is empty")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise bad("it is not valid Unicode") from None
    try:
        parsed = httpx.URL(text)
        port = parsed.port
        host = parsed.raw_host.decode("ascii")
    except (httpx.InvalidURL, ValueError, UnicodeError) as exc:
        raise bad(f"it does not parse ({exc})") from None
    if parsed.scheme.lower() not in ("http", "https"):
        hint = f" (did you mean 'http://{text}'?)" if "://" not in text else ""
        raise bad(f"the scheme must be http:// or https://{hint}")
    if not host:
        raise bad("it names no host")
    if not _HOST.fullmatch(host):
        raise bad(f"the host {host!r} is not a host name or an IP address")
    if port is not None and not 1 <= port <= 65535:
        raise bad(f"the port {port} is not in 1-65535")
    if parsed.query:
        raise bad("it has a query (?...)")
    if parsed.fragment or "#" in text:
        raise bad("it has a fragment (#...)")
    return text.rstrip("/")


def _check_token(token: Any) -> str | None:
    if token is None or token == "":
        return None
    if not isinstance(token, str):
        raise TypeError(f"access_token must be a str, not {type(token).__name__}")
    if not _TOKEN.fullmatch(token):
        raise ValueError(
            "access_token must be visible ASCII characters (it is sent in an HTTP header)"
        )
    return token


@public
@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried: connection errors, timeouts, 408/429/5xx.

    Waits grow exponentially from ``backoff`` to ``max_backoff`` with full jitter; a
    ``Retry-After`` header is honoured up to ``max_retry_after`` seconds.

    Example:
        >>> RetryPolicy(attempts=5).attempts
        5
        >>> RetryPolicy.none().attempts
        1
    """

    attempts: int = 6
    backoff: float = 0.05
    max_backoff: float = 5.0
    max_retry_after: float = 30.0

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or isinstance(self.attempts, bool):
            raise TypeError(f"attempts must be an int, not {type(self.attempts).__name__}")
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, not {self.attempts}")
        for name in ("backoff", "max_backoff", "max_retry_after"):
            seconds = check_timeout(getattr(self, name), name=name)
            if seconds is None:
                raise TypeError(f"{name} must be a number of seconds, not None")

    @classmethod
    def none(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(attempts=1)


@dataclass(frozen=True)
class Settings:
    """Resolved connection settings.

    Example:
        >>> Settings.resolve(base_url="http://127.0.0.1:9000/").base_url
        'http://127.0.0.1:9000'
    """

    base_url: str
    access_token: str | None
    timeout: httpx.Timeout
    retries: RetryPolicy

    @classmethod
    def resolve(
        cls,
        *,
        base_url: str | None = None,
        access_token: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        retries: int | RetryPolicy | None = None,
    ) -> Settings:
        """Arguments first, then ``DAISI_BASE_URL`` / ``DAISI_ACCESS_TOKEN``, then defaults.

        Raises ``ValueError`` / ``TypeError`` for a bad value (an empty environment
        variable counts as unset). ``timeout=None`` means the defaults (30 s, 10 s to
        connect); a number must be > 0; an ``httpx.Timeout`` is used as is (its phases
        may be ``None``, no limit, but not negative).
        """
        if base_url is not None:
            url = check_base_url(base_url)
        elif os.environ.get("DAISI_BASE_URL", "").strip():
            url = check_base_url(os.environ["DAISI_BASE_URL"], source="DAISI_BASE_URL")
        else:
            url = DEFAULT_BASE_URL
        token = access_token if access_token is not None else os.environ.get("DAISI_ACCESS_TOKEN")
        tmo = _http_timeout(timeout)
        if retries is None:
            policy = RetryPolicy()
        elif isinstance(retries, RetryPolicy):
            policy = retries
        else:
            if not isinstance(retries, int) or isinstance(retries, bool):
                raise TypeError(
                    f"retries must be an int or a RetryPolicy, not {type(retries).__name__}"
                )
            if retries < 0:
                raise ValueError(f"retries must be >= 0, not {retries}")
            policy = RetryPolicy(attempts=retries + 1)
        return cls(base_url=url, access_token=_check_token(token), timeout=tmo, retries=policy)
