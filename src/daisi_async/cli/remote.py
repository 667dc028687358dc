"""What the client verbs share: the server to talk to (``--base-url``, ``--token``), and
how an outcome becomes an exit code (0 ok, 1 a remote failure, 2 a usage error).

Example:
    >>> @click.command()
    ... @remote_options
    ... def ping(remote: Remote) -> None:
    ...     run(lambda: _ping(remote))  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import anyio
import click

from .._config import DEFAULT_BASE_URL, Settings, check_base_url
from .._errors import DaisiError, DaisiRequestError

if sys.version_info < (3, 11):  # pragma: no cover - anyio depends on the backport there
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from .._daisi import AsyncDaisi
    from .._dialects.base import Dialect

__all__ = ["INTERRUPTED", "Remote", "RemoteFailure", "remote_options", "run"]

F = TypeVar("F", bound=Callable[..., Any])

INTERRUPTED = 130
"""The exit code after Ctrl-C (128 + SIGINT), as shells use."""


class RemoteFailure(click.ClickException):
    """A failure on the server's side: printed as ``Error: ...``, exit code 1."""

    exit_code = 1


@dataclass(frozen=True)
class Remote:
    """The server the verbs talk to, and the token they show it."""

    base_url: str
    token: str | None

    def daisi(self, name_or_id: str) -> AsyncDaisi:
        """The Daisi ``name_or_id`` on this server (use it with ``async with``)."""
        from .._daisi import AsyncDaisi

        return AsyncDaisi(name_or_id, base_url=self.base_url, access_token=self.token)

    @contextlib.asynccontextmanager
    async def server(self) -> AsyncIterator[Dialect]:
        """The server itself, for what concerns no Daisi in particular."""
        from .._session import server

        settings = Settings.resolve(base_url=self.base_url, access_token=self.token)
        async with server(settings, None) as dialect:
            yield dialect


def _base_url(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return check_base_url(value, source="--base-url")
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def remote_options(fn: F) -> F:
    """Add ``--base-url`` and ``--token``; the command gets them as ``remote``."""

    @functools.wraps(fn)
    def command(*args: Any, base_url: str, token: str | None, **kwargs: Any) -> Any:
        return fn(*args, remote=Remote(base_url, token or None), **kwargs)

    command = click.option(
        "--token",
        envvar="DAISI_ACCESS_TOKEN",
        show_envvar=True,
        show_default=False,
        metavar="TOKEN",
        help="the access token (default: none; public Daisies need none)",
    )(command)
    command = click.option(
        "--base-url",
        envvar="DAISI_BASE_URL",
        show_envvar=True,
        default=DEFAULT_BASE_URL,
        metavar="URL",
        callback=_base_url,
        help="the Daisi server",
    )(command)
    return command  # type: ignore[return-value]


def _leaf(exc: BaseException) -> BaseException:
    """The one error inside (nested) groups of one, else ``exc``."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def run(main: Callable[[], Awaitable[int | None]]) -> NoReturn:
    """Run a verb's coroutine and exit with its code: a :class:`DaisiError` is a
    remote failure (1; a refused request, 400 or 422, is a usage error: 2), a
    ``ValueError`` / ``TypeError`` of the client a usage error (2), Ctrl-C 130."""
    try:
        code = anyio.run(main)
    except BaseException as raised:
        exc = _leaf(raised)
        if isinstance(exc, (click.ClickException, click.exceptions.Exit)):
            raise exc from None
        # Ctrl-C cancels the run's main task: Python 3.11+ reports KeyboardInterrupt, the
        # runner of older ones the cancellation itself (nothing else cancels that task).
        if isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)):
            click.echo("Interrupted.", err=True)
            sys.exit(INTERRUPTED)
        if isinstance(exc, DaisiRequestError):
            raise click.UsageError(str(exc)) from None
        if isinstance(exc, DaisiError):
            raise RemoteFailure(str(exc)) from None
        if isinstance(exc, (ValueError, TypeError)):
            raise click.UsageError(str(exc)) from None
        raise
    sys.exit(code or 0)
