"""Settings: base URL, token, timeouts and retry policy (arguments win over environment)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import httpx

__all__ = ["DEFAULT_BASE_URL", "RetryPolicy", "Settings"]

DEFAULT_BASE_URL = "http://127.0.0.1:8421"
"""Where the local runtime (``daisi serve``) listens by default."""

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)


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
        """Arguments first, then ``DAISI_BASE_URL`` / ``DAISI_ACCESS_TOKEN``, then defaults."""
        url = base_url or os.environ.get("DAISI_BASE_URL") or DEFAULT_BASE_URL
        token = access_token if access_token is not None else os.environ.get("DAISI_ACCESS_TOKEN")
        if timeout is None:
            tmo = DEFAULT_TIMEOUT
        elif isinstance(timeout, httpx.Timeout):
            tmo = timeout
        else:
            tmo = httpx.Timeout(float(timeout))
        if retries is None:
            policy = RetryPolicy()
        elif isinstance(retries, RetryPolicy):
            policy = retries
        else:
            if retries < 0:
                raise ValueError("retries must be >= 0")
            policy = RetryPolicy(attempts=retries + 1)
        return cls(
            base_url=url.rstrip("/"), access_token=token or None, timeout=tmo, retries=policy
        )
