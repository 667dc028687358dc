"""``daisi ls`` (the Daisies) and ``daisi runs`` (the caller's executions, newest first),
through the public client: :meth:`AsyncDaisi.list` and :meth:`AsyncDaisi.list_executions`.

Example::

    daisi ls
    daisi runs --daisi "Add Two Numbers" --status failed --limit 5
"""

from __future__ import annotations

import contextlib
from typing import Any

import click

from .._daisi import AsyncDaisi
from .._errors import DaisiError
from .._wire import ExecutionStatus
from .output import echo_json, table, took, when
from .remote import Remote, remote_options, run

__all__ = ["ls", "runs"]

STATUSES = [s.value for s in ExecutionStatus if s is not ExecutionStatus.NOT_STARTED]


@click.command("ls")
@click.option("--json", "as_json", is_flag=True, help="print the Daisi objects as JSON")
@remote_options
def ls(remote: Remote, as_json: bool) -> None:
    """List the Daisies.

    Their name, owner, state and endpoints, and why the broken ones are.
    """
    run(lambda: _ls(remote, as_json=as_json))


async def _ls(remote: Remote, *, as_json: bool) -> int:
    daisies = await AsyncDaisi.list(base_url=remote.base_url, access_token=remote.token)
    if as_json:
        echo_json(daisies)
        return 0
    if not daisies:
        click.echo(f"no Daisies at {remote.base_url}", err=True)
        return 0
    rows = [
        [
            str(d.get("name")),
            str(d.get("owner") or "-"),
            str(d.get("state") or "-"),
            ", ".join(str(e["name"]) for e in d.get("endpoints") or []) or "-",
        ]
        for d in daisies
    ]
    click.echo(table(["NAME", "OWNER", "STATE", "ENDPOINTS"], rows))
    broken = [d for d in daisies if d.get("broken")]
    if broken:
        click.echo("\nbroken:")
        for d in broken:
            first, *rest = str(d["broken"]).strip().splitlines() or [""]
            click.echo(f"  {d.get('name')}: {first}")
            for line in rest:
                click.echo(f"    {line}")
    return 0


@click.command("runs")
@click.option("--daisi", metavar="NAME", help="only this Daisi's (a name, owner/name or id)")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(STATUSES, case_sensitive=False),
    help="only those with this status (repeatable)",
)
@click.option("--limit", type=click.IntRange(min=1), default=20, help="at most this many")
@click.option("--before", metavar="ID", help="only those created before this execution")
@click.option("--json", "as_json", is_flag=True, help="print the execution objects as JSON")
@remote_options
def runs(
    remote: Remote,
    daisi: str | None,
    statuses: tuple[str, ...],
    limit: int,
    before: str | None,
    as_json: bool,
) -> None:
    """List your executions, newest first.

    Yours are those made with your token; without one, the anonymous ones.
    """
    filters = {"daisi": daisi, "status": list(statuses), "limit": limit, "before": before}
    run(lambda: _runs(remote, filters, as_json=as_json))


async def _runs(remote: Remote, filters: dict[str, Any], *, as_json: bool) -> int:
    found = await AsyncDaisi.list_executions(
        **filters, base_url=remote.base_url, access_token=remote.token
    )
    if as_json:
        echo_json(found)
        return 0
    if not found:
        click.echo("no executions", err=True)
        return 0
    names: dict[str, str] = {}
    with contextlib.suppress(DaisiError):  # the names are a bonus
        daisies = await AsyncDaisi.list(base_url=remote.base_url, access_token=remote.token)
        names = {str(d["id"]): str(d["name"]) for d in daisies}
    rows = [
        [
            str(r["id"]),
            names.get(str(r.get("daisi_id")), str(r.get("daisi_id"))),
            str(r.get("endpoint")),
            str(r.get("status")),
            when(r.get("created_at")),
            took(r.get("started_at"), r.get("finished_at")),
        ]
        for r in found
    ]
    click.echo(table(["ID", "DAISI", "ENDPOINT", "STATUS", "CREATED", "TOOK"], rows))
    if len(found) == filters["limit"]:
        click.echo(f"more: daisi runs --before {found[-1]['id']}", err=True)
    return 0
