"""``daisi call``, ``daisi status``, ``daisi logs`` and ``daisi cancel``: one execution.

``call`` runs an endpoint through the public client (:class:`~daisi_async.AsyncDaisi`);
the others find an execution by its id alone, then reach it through its Daisi
(``await d.execution(id)``), as a program would.

Example::

    daisi call "Add Two Numbers" compute firstNumber=5 secondNumber=6   # prints 11
    daisi call "Live Logging" live_log_test firstNumber=1 secondNumber=2 --no-wait
    daisi logs -f 6f1c9d0e-...
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any

import anyio
import click

from .._errors import DaisiCancelledError, DaisiError, DaisiExecutionError, DaisiNotFoundError
from .output import Feedback, echo_json, json_text, result_text, took, when
from .remote import Remote, RemoteFailure, remote_options, run

if TYPE_CHECKING:
    from .._execution import AsyncDaisiExecution

__all__ = ["call", "cancel", "logs", "parse_arguments", "status"]

CANCEL_GRACE = 10.0
"""Seconds ``daisi call`` gives the server to cancel the run after Ctrl-C."""


def parse_arguments(words: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` words -> keyword arguments: each value is JSON when it parses,
    else the text itself (``click.BadParameter`` for a word without ``=``, an empty key
    or a key given twice).

    Example:
        >>> parse_arguments(["n=5", "text=hello", 'labels=["a", "b"]', 'quoted="5"'])
        {'n': 5, 'text': 'hello', 'labels': ['a', 'b'], 'quoted': '5'}
    """
    out: dict[str, Any] = {}
    for word in words:
        key, eq, text = word.partition("=")
        if not eq or not key:
            raise click.BadParameter(
                f"expected KEY=VALUE, not {word!r}", param_hint="'KEY=VALUE...'"
            )
        if key in out:
            raise click.BadParameter(f"{key!r} is given twice", param_hint="'KEY=VALUE...'")
        try:
            out[key] = json.loads(text)
        except ValueError:
            out[key] = text
    return out


def _json_flag(what: str) -> Callable[[Any], Any]:
    return click.option("--json", "as_json", is_flag=True, help=f"print {what} as JSON")


# -- call ------------------------------------------------------------------------------------
@click.command("call")
@click.argument("name")
@click.argument("endpoint")
@click.argument("arguments", nargs=-1, metavar="KEY=VALUE...")
@_json_flag("the execution (id, status, and result or error)")
@click.option("--no-wait", is_flag=True, help="print the execution id at once; it keeps running")
@remote_options
def call(
    remote: Remote,
    name: str,
    endpoint: str,
    arguments: tuple[str, ...],
    as_json: bool,
    no_wait: bool,
) -> None:
    """Call ENDPOINT of the Daisi NAME (a name, owner/name or id).

    Each VALUE is read as JSON when it parses (5, 2.5, true, null, "5", [1, 2],
    {"a": 1}), else taken as text. While the run goes on, its log lines go to stderr;
    then the result goes to stdout: JSON when it is JSON-able, else its repr. A failed
    run prints the remote traceback on stderr and exits with 1. Ctrl-C cancels the run.
    """
    kwargs = parse_arguments(arguments)
    run(lambda: _call(remote, name, endpoint, kwargs, as_json=as_json, no_wait=no_wait))


async def _call(
    remote: Remote,
    name: str,
    endpoint: str,
    kwargs: dict[str, Any],
    *,
    as_json: bool,
    no_wait: bool,
) -> int:
    async with remote.daisi(name) as d:
        try:
            ex = d.call(endpoint, **kwargs)
        except TypeError as exc:  # the arguments don't bind, as in a local call
            raise click.UsageError(f"{exc}; {endpoint} takes {d.signature(endpoint)}") from None
        eid = await ex.start()
        about = {"id": eid, "daisi": d.name, "endpoint": endpoint}
        if no_wait:
            if as_json:
                echo_json({**about, "status": ex.last_status.value})
            else:
                click.echo(eid)
            return 0
        with Feedback(f"{d.name}.{endpoint} {eid}") as feedback:
            try:
                await _follow(ex, feedback.err, feedback)
            except anyio.get_cancelled_exc_class():  # Ctrl-C: stop the run we started
                with (
                    anyio.CancelScope(shield=True),
                    anyio.move_on_after(CANCEL_GRACE),
                    contextlib.suppress(DaisiError),
                ):
                    await ex.cancel()
                    feedback.err(f"cancelled execution {eid}")
                raise
        try:
            value = await ex
        except (DaisiExecutionError, DaisiCancelledError) as exc:
            if as_json:
                echo_json({**about, "status": ex.last_status.value, "error": _error(exc)})
            raise RemoteFailure(str(exc)) from None
        if as_json:
            text = json_text(value)
            shown = {"result": value} if text is not None else {"result_repr": repr(value)}
            echo_json({**about, "status": ex.last_status.value, **shown})
        else:
            click.echo(result_text(value))
        return 0


def _error(exc: DaisiError) -> dict[str, Any]:
    if isinstance(exc, DaisiExecutionError):
        return {"type": exc.exc_type, "message": exc.remote_message, "traceback": exc.traceback}
    return {"type": "daisi.Cancelled", "message": str(exc), "traceback": ""}


async def _follow(
    ex: AsyncDaisiExecution, write: Callable[[str], None], feedback: Feedback
) -> None:
    """Write the run's log lines as they come, until it ends."""
    try:
        async for line in ex.logs():
            write(line)
    except DaisiError as exc:  # the result is still awaited: say why the lines stopped
        feedback.err(f"(the live log stopped: {exc})")


# -- by id -----------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def _attached(
    remote: Remote, eid: str
) -> AsyncIterator[tuple[dict[str, Any], AsyncDaisiExecution]]:
    """The execution's record, and its handle through its Daisi."""
    async with remote.server() as server:
        record = await server.record(eid)
    daisi_id = str(record.get("daisi_id"))
    async with contextlib.AsyncExitStack() as stack:
        try:
            daisi = await stack.enter_async_context(remote.daisi(daisi_id))
        except DaisiNotFoundError:
            raise RemoteFailure(
                f"execution {eid} is of the Daisi {daisi_id}, which the server no longer"
                f" serves (`daisi status {eid}` still shows it)"
            ) from None
        yield record, await daisi.execution(eid)


@click.command("status")
@click.argument("execution_id", metavar="ID")
@_json_flag("the execution object of the protocol")
@remote_options
def status(remote: Remote, execution_id: str, as_json: bool) -> None:
    """Show the execution ID.

    Its Daisi, endpoint, status, times, and the error with the remote traceback.
    """
    run(lambda: _status(remote, execution_id, as_json=as_json))


async def _status(remote: Remote, eid: str, *, as_json: bool) -> int:
    async with remote.server() as server:
        record = await server.record(eid)
        if as_json:
            echo_json(record)
            return 0
        names: dict[str, str] = {}
        with contextlib.suppress(DaisiError):  # the name is a bonus
            names = {str(d["id"]): str(d["name"]) for d in await server.catalogue()}
    error = record.get("error") or {}
    daisi_id = str(record.get("daisi_id"))
    rows = [
        ("id", record.get("id")),
        ("daisi", f"{names[daisi_id]} ({daisi_id})" if daisi_id in names else daisi_id),
        ("endpoint", record.get("endpoint")),
        ("status", record.get("status")),
        ("created", when(record.get("created_at"))),
        ("started", when(record.get("started_at"))),
        ("finished", when(record.get("finished_at"))),
        ("took", took(record.get("started_at"), record.get("finished_at"))),
    ]
    if error:
        rows.append(("error", f"{error.get('type')}: {error.get('message')}"))
    for key, value in rows:
        click.echo(f"{key:<9} {value}")
    if error.get("traceback"):
        click.echo("\n" + str(error["traceback"]).rstrip())
    return 0


@click.command("logs")
@click.argument("execution_id", metavar="ID")
@click.option("-f", "--follow", is_flag=True, help="follow the log live until the run ends")
@remote_options
def logs(remote: Remote, execution_id: str, follow: bool) -> None:
    """Print the log lines of the execution ID.

    The lines are what the run printed (stdout, stderr) and logged; with -f they come
    live until the run ends.
    """
    run(lambda: _logs(remote, execution_id, follow=follow))


async def _logs(remote: Remote, eid: str, *, follow: bool) -> int:
    async with _attached(remote, eid) as (record, ex):
        if not follow:
            for line in await ex.logs():
                click.echo(line)
            return 0
        with Feedback(f"following {record.get('endpoint')} {eid}") as feedback:
            await _follow(ex, feedback.out, feedback)
    return 0


@click.command("cancel")
@click.argument("execution_id", metavar="ID")
@remote_options
def cancel(remote: Remote, execution_id: str) -> None:
    """Cancel the execution ID.

    Prints its final status: CANCELLED, or the status of a run that had already ended.
    """
    run(lambda: _cancel(remote, execution_id))


async def _cancel(remote: Remote, eid: str) -> int:
    async with _attached(remote, eid) as (record, ex):
        before = str(record.get("status"))
        final = await ex.cancel()
    click.echo(final.value)
    if final.value == before and final.value != "CANCELLED":
        click.echo(f"execution {eid} had already ended", err=True)
    return 0
