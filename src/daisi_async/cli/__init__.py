"""The ``daisi`` command: call and serve Daisies.

One module per group of verbs: :mod:`.serve` (the local runtime), :mod:`.calls`
(``call``, ``status``, ``logs``, ``cancel``), :mod:`.listing` (``ls``, ``runs``);
:mod:`.remote` holds what the client verbs share (``--base-url``, ``--token``, exit
codes, output) and :mod:`.types` the option value types. Exit codes: 0 ok, 1 a remote
failure (the server said no, or the execution failed), 2 a usage error.

Example::

    daisi serve examples/daisies --port 8421
    daisi call "Add Two Numbers" compute firstNumber=5 secondNumber=6
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import click

from .. import __version__

__all__ = ["cli", "main"]

VERBS = {
    "serve": "serve:serve",
    "ls": "listing:ls",
    "runs": "listing:runs",
    "call": "calls:call",
    "status": "calls:status",
    "logs": "calls:logs",
    "cancel": "calls:cancel",
}
"""Each verb and where it lives (``module:name`` in this package)."""


class _Verbs(click.Group):
    """A group that imports a verb's module only when that verb is used (``daisi
    serve`` loads no HTTP client; ``daisi ls`` no server)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(VERBS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = VERBS.get(cmd_name)
        if where is None:
            return None
        module, name = where.split(":")
        command = getattr(importlib.import_module(f".{module}", __name__), name)
        assert isinstance(command, click.Command)
        return command


@click.group(
    cls=_Verbs,
    context_settings={"show_default": True, "help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, "--version", prog_name="daisi", message="%(prog)s %(version)s")
def cli() -> None:
    """Call and serve Daisies (Python functions served over HTTP).

    The client verbs talk to the server at --base-url (or $DAISI_BASE_URL), with
    --token (or $DAISI_ACCESS_TOKEN). Exit codes: 0 ok, 1 remote failure, 2 usage.
    """


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``daisi`` command with ``argv`` (default: ``sys.argv[1:]``); returns the
    exit code (click's errors are printed, never raised)."""
    try:
        cli.main(args=None if argv is None else list(argv), prog_name="daisi")
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        click.echo(str(code), err=True)
        return 1
    return 0
