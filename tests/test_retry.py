"""The one retry policy (``_retry``): :func:`retry_call` keeps the policy's attempt count
and log while its first attempt runs outside tenacity."""

from __future__ import annotations

import logging

import pytest

from daisi_async import RetryPolicy
from daisi_async._retry import retry_call

pytestmark = pytest.mark.anyio


class Flaky:
    """Fails ``failures`` times with ``exc``, then returns the number of calls."""

    def __init__(self, failures: int, exc: Exception) -> None:
        self.failures = failures
        self.exc = exc
        self.calls = 0

    async def __call__(self) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.exc
        return self.calls


async def test_a_first_success_is_returned_at_once(caplog: pytest.LogCaptureFixture) -> None:
    call = Flaky(0, OSError("never"))
    with caplog.at_level(logging.WARNING, logger="daisi_async"):
        assert await retry_call(call, RetryPolicy(), retry=lambda e: True, what="x") == 1
    assert call.calls == 1 and not caplog.records


async def test_failures_are_retried_with_the_policys_numbering(
    caplog: pytest.LogCaptureFixture,
) -> None:
    call = Flaky(3, OSError("flaky"))
    policy = RetryPolicy(attempts=5, backoff=0.001)
    with caplog.at_level(logging.WARNING, logger="daisi_async"):
        assert await retry_call(call, policy, retry=lambda e: True, what="the thing") == 4
    said = [r.getMessage() for r in caplog.records]
    assert [s.split("(attempt ")[1].split(" failed")[0] for s in said] == [
        "1 of 5",
        "2 of 5",
        "3 of 5",
    ]
    assert all(s.startswith("retrying the thing in ") for s in said)


async def test_the_budget_is_the_policys_attempts() -> None:
    call = Flaky(10, OSError("down"))
    policy = RetryPolicy(attempts=3, backoff=0.001)
    with pytest.raises(OSError, match="down"):
        await retry_call(call, policy, retry=lambda e: True, what="x")
    assert call.calls == 3


@pytest.mark.parametrize("attempts", [1, 4])
async def test_what_may_not_be_retried_is_raised_at_once(attempts: int) -> None:
    call = Flaky(1, ValueError("bad"))
    policy = RetryPolicy(attempts=attempts, backoff=0.001)
    with pytest.raises(ValueError, match="bad"):
        await retry_call(call, policy, retry=lambda e: isinstance(e, OSError), what="x")
    assert call.calls == 1


async def test_one_attempt_means_no_retry() -> None:
    call = Flaky(1, OSError("once"))
    with pytest.raises(OSError):
        await retry_call(call, RetryPolicy(attempts=1), retry=lambda e: True, what="x")
    assert call.calls == 1
