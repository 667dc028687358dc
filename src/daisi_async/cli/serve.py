"""``daisi serve``: the local runtime (needs the ``server`` extra).

Each option is one decorator in the list below, and says where its value goes:

* ``@config_option("--name", field="name", ...)`` sets a field of
  :class:`~daisi_async.server.engine.RuntimeConfig` (dotted for a nested one:
  ``field="envs.offline"``). Adding such an option is that one line plus the field.
  ``to_config=`` turns the option's value into the field's when the command runs
  (reading a file, say); a ``ValueError`` or ``OSError`` it raises is shown as a bad
  value of the option (exit code 2). A ``None`` value leaves the field's default.
* ``@server_option("--name", ...)`` is a keyword argument of the same name of
  :func:`daisi_async.server.serve.run` (the HTTP server's settings, not the runtime's).

Everything else is click's: ``type=`` (see :mod:`.types`), ``default=`` (shown in
``--help``), ``help=``, ``multiple=True`` (a tuple), ``is_flag=True``, ``hidden=True``.

Example:
    >>> settings = settings_of([".", "--workers", "2", "--log-level", "info"])
    >>> settings.config.workers, settings.server["log_level"]
    (2, 'info')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .types import COUNT, ENV_NAME, PLACE, POSITIVE_FLOAT, POSITIVE_INT, SIZE, URL

if TYPE_CHECKING:
    from ..server.engine import RuntimeConfig

__all__ = ["ServeSettings", "config_option", "serve", "server_option", "settings_of"]

F = TypeVar("F", bound=Callable[..., Any])
SERVER_EXTRA = "pip install 'daisi-async[server]'"
LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigOption(click.Option):
    """An option whose value is a field of ``RuntimeConfig`` (see the module docstring)."""

    def __init__(
        self,
        *args: Any,
        field: str,
        to_config: Callable[[Any], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.field = field
        self.to_config = to_config


class ServerOption(click.Option):
    """An option whose value is a keyword argument of ``server.serve.run``."""


def config_option(*decls: str, field: str, **kwargs: Any) -> Callable[[F], F]:
    """A ``daisi serve`` option that sets ``RuntimeConfig.<field>``."""
    return click.option(*decls, cls=ConfigOption, field=field, **kwargs)


def server_option(*decls: str, **kwargs: Any) -> Callable[[F], F]:
    """A ``daisi serve`` option passed to ``server.serve.run`` by its name."""
    return click.option(*decls, cls=ServerOption, **kwargs)


def _tokens(path: Path) -> dict[str, str]:
    from ..server.auth import load_tokens

    try:
        return load_tokens(path)
    except (OSError, ValueError) as exc:
        raise ValueError(f"can't read the tokens file: {exc}") from None


def _cluster(text: str) -> str:
    from ..server.backends.dask.address import parse_cluster

    return str(parse_cluster(text))


def _resolved(path: Path) -> Path:
    return path.resolve()


OPTIONS: list[Callable[[F], F]] = [
    server_option("--host", default="127.0.0.1", help="the address to listen on"),
    server_option(
        "--port", type=click.IntRange(0, 65535), default=8421, help="0 picks a free port"
    ),
    config_option(
        "--store",
        field="store_dir",
        to_config=_resolved,
        type=click.Path(path_type=Path),
        default=Path(".daisi"),
        help="where executions, logs and blobs are kept",
    ),
    config_option(
        "--tokens",
        field="tokens",
        to_config=_tokens,
        type=click.Path(path_type=Path),
        help="tokens file: JSON {token: user} or 'TOKEN USER' lines",
    ),
    config_option(
        "--workers",
        field="workers",
        type=COUNT,
        default=0,
        help="worker processes each Daisi keeps running from startup, even idle (started in"
        " the background); the others start on a Daisi's first calls",
    ),
    config_option(
        "--max-workers",
        field="max_workers",
        type=POSITIVE_INT,
        help="the most workers a Daisi may have (asked for at run time or in daisi.toml);"
        " default: the number of CPU cores",
    ),
    config_option(
        "--timeout",
        field="timeout",
        type=POSITIVE_FLOAT,
        default=1800.0,
        help="time limit per execution, seconds",
    ),
    config_option(
        "--memory-limit",
        field="memory_limit",
        type=SIZE,
        default="8GB",
        help="memory limit per worker",
    ),
    config_option(
        "--max-body", field="max_body_bytes", type=SIZE, default="1GB", help="largest request body"
    ),
    config_option(
        "--owner",
        field="default_owner",
        default="local",
        help="owner of Daisies whose daisi.toml names none",
    ),
    config_option(
        "--legacy-only", field="legacy_only", is_flag=True, help="serve only the pydaisi routes"
    ),
    config_option(
        "--sync",
        field="sync",
        to_config=str.upper,
        type=click.Choice(["normal", "full"]),
        default="normal",
        help="normal: what was acknowledged survives a crash of the runtime process; "
        "full: also a crash of the machine (an fsync per commit)",
    ),
    server_option(
        "--header-timeout",
        type=POSITIVE_FLOAT,
        default=5.0,
        help="close a connection whose request headers are not complete after this many seconds",
    ),
    server_option(
        "--limit-concurrency",
        type=POSITIVE_INT,
        default=4096,
        help="answer 503 to requests beyond this many open connections or running requests"
        " (the limit on open files is raised to fit them, where the system allows)",
    ),
    server_option(
        "--http",
        type=click.Choice(["auto", "h11", "httptools"]),
        default="auto",
        help="HTTP parser: httptools when installed (auto), or h11",
    ),
    server_option(
        "--loop",
        type=click.Choice(["auto", "asyncio", "uvloop"]),
        default="auto",
        help="event loop: uvloop when installed (auto), or asyncio's own",
    ),
    config_option(
        "--env-pass",
        field="env_pass",
        multiple=True,
        type=ENV_NAME,
        metavar="NAME",
        help="pass this environment variable to the Daisies' workers (repeatable); "
        "they get only an allowlist (PATH, HOME, locale, ...) otherwise",
    ),
    config_option(
        "--index-url",
        field="envs.index_url",
        type=URL,
        metavar="URL",
        help="environments (a Daisi with a requirements.txt runs in one of its own, built"
        " with uv and kept in the store): the package index, in place of PyPI",
    ),
    config_option(
        "--find-links",
        field="envs.find_links",
        multiple=True,
        type=PLACE,
        metavar="PATH_OR_URL",
        help="environments: also look for packages in this folder or page (repeatable)",
    ),
    config_option(
        "--offline",
        field="envs.offline",
        is_flag=True,
        help="environments: build them without the network",
    ),
    config_option(
        "--shared-env",
        field="envs.shared",
        is_flag=True,
        help="run every Daisi in the server's environment (a missing requirement is a warning)",
    ),
    config_option(
        "--idle-timeout",
        field="idle_timeout",
        type=POSITIVE_FLOAT,
        default=600.0,
        metavar="SECONDS",
        help="a worker idle this long exits, down to the Daisi's min_workers",
    ),
    config_option(
        "--import-timeout",
        field="import_timeout",
        type=POSITIVE_FLOAT,
        default=60.0,
        metavar="SECONDS",
        help="a worker that takes longer to import its Daisi is stopped and the start fails",
    ),
    config_option(
        "--reload",
        field="reload",
        is_flag=True,
        help="watch the folder: reload edited Daisies (new calls get new workers), add new"
        " ones, drop removed ones",
    ),
    config_option(
        "--cluster",
        field="cluster",
        to_config=_cluster,
        metavar="ADDRESS",
        help="run executions on a Dask cluster: its scheduler (tcp://HOST:8786), or local:N"
        " to start N Dask workers here; needs the cluster extra",
    ),
    click.option(
        "--isolation",
        type=click.Choice(["auto", "sandbox", "none"]),
        default="auto",
        help="sandbox: run Daisi code under bubblewrap (bwrap), where it can't read the store,"
        " tokens, secrets or other Daisies, signal the server or change the served folder;"
        " refuse to start without it. auto: the sandbox when bwrap works here, else none,"
        " with a warning. none: Daisi code runs with the server's rights",
    ),
    click.option(
        "--secrets",
        type=click.Path(path_type=Path),
        metavar="FILE",
        help='a TOML file of secrets per Daisi (["Daisi name"] or ["owner/name"] tables of'
        ' NAME = "value"), given to that Daisi\'s workers as environment variables; it must'
        " lie outside the served folder and the store",
    ),
    server_option(
        "--log-level",
        type=click.Choice(LOG_LEVELS, case_sensitive=False),
        default="warning",
        help="what the console shows besides the startup summary: info adds a line per"
        " request (the access log) and the HTTP server's own messages, debug more",
    ),
    server_option("--ready-file", type=click.Path(path_type=Path), hidden=True),
]
"""The options of ``daisi serve``, in the order ``--help`` lists them."""


@dataclass
class ServeSettings:
    """What ``daisi serve`` runs with: the runtime's config and ``run()``'s keywords."""

    config: RuntimeConfig
    server: dict[str, Any]


def _set(config: Any, field: str, value: Any) -> None:
    """Set a (dotted) field; a frozen nested dataclass is replaced."""
    head, _, rest = field.partition(".")
    if not rest:
        setattr(config, head, value)
        return
    inner = getattr(config, head)
    try:
        _set(inner, rest, value)
    except dataclasses.FrozenInstanceError:
        if "." in rest:
            raise
        setattr(config, head, dataclasses.replace(inner, **{rest: value}))


def _settings(command: click.Command, params: dict[str, Any]) -> ServeSettings:
    """The settings of parsed ``params`` (``click.UsageError`` / ``BadParameter``)."""
    from ..server.engine import RuntimeConfig
    from ..server.workers import MAX_WORKERS

    config = RuntimeConfig(root=Path(params["path"]).resolve(), store_dir=Path(".daisi"))
    server: dict[str, Any] = {}
    for param in command.params:
        value = params.get(param.name or "")
        if isinstance(param, ServerOption):
            server[param.name or ""] = value
        if not isinstance(param, ConfigOption) or value is None:
            continue
        if param.multiple:
            value = tuple(value)
        if param.to_config is not None:
            try:
                value = param.to_config(value)
            except (OSError, ValueError) as exc:
                raise click.BadParameter(str(exc), param=param) from None
        _set(config, param.field, value)
    if config.cluster and params.get("max_workers") is None:
        config.max_workers = MAX_WORKERS  # the cap is the cluster's, not this machine's
    if config.max_workers > MAX_WORKERS:
        raise click.UsageError(f"--max-workers can't be over {MAX_WORKERS}")
    if config.workers > config.max_workers:
        raise click.UsageError(
            f"--workers {config.workers} is over the cap of {config.max_workers}"
            " workers per Daisi; lower --workers or raise --max-workers"
        )
    return ServeSettings(config=config, server=server)


def settings_of(argv: Sequence[str]) -> ServeSettings:
    """What ``daisi serve ARGV`` would run with, without running anything (nor looking
    at the served folder).

    Raises what click raises for a bad command line (``click.UsageError``, whose
    subclass ``click.BadParameter`` names the option).
    """
    ctx = serve.make_context("serve", list(argv))
    return _settings(serve, ctx.params)


def _isolate(ctx: click.Context, config: RuntimeConfig, params: dict[str, Any]) -> None:
    """Read ``--secrets`` and choose the ``--isolation`` in force (say which); exit 2 when
    the secrets file is refused or the sandbox asked for can't run."""
    from ..server.secrets_file import SecretsError, load_secrets
    from ..server.workers.sandbox import SandboxUnavailable, choose_isolation

    root, store = config.root, config.store_dir
    secrets_path: Path | None = params.get("secrets")
    if secrets_path is not None:
        try:
            config.secrets = load_secrets(secrets_path, root=root, store=store)
        except SecretsError as exc:
            click.echo(f"daisi serve: --secrets: {exc}", err=True)
            ctx.exit(2)
    tokens_path: Path | None = params.get("tokens")
    private = [p for p in (tokens_path, secrets_path) if p is not None]
    try:
        config.sandbox, notice = choose_isolation(
            params["isolation"], root=root, store=store, private_files=private
        )
    except SandboxUnavailable as exc:
        click.echo(f"daisi serve: {exc}", err=True)
        ctx.exit(2)
    click.echo(f"daisi runtime: {notice}", err=True)


def _with_options(fn: F) -> F:
    for option in reversed(OPTIONS):
        fn = option(fn)
    return fn


@click.command("serve")
@click.argument("path", type=click.Path(path_type=Path))
@_with_options
@click.pass_context
def serve(ctx: click.Context, /, **params: Any) -> None:
    """Serve the Daisies in PATH (the local runtime).

    PATH is a Daisi folder, or a folder of Daisi folders. At startup it prints the URL,
    the Daisies (loaded, building, broken and why), the isolation in force and the
    store. Needs the server extra.
    """
    try:
        from ..server.serve import run
        from ..server.store import StoreLockedError

        settings = _settings(ctx.command, params)
    except ImportError as exc:
        click.echo(f"daisi serve needs the server extra: {SERVER_EXTRA} ({exc})", err=True)
        ctx.exit(2)
    if not settings.config.root.is_dir():
        raise click.BadParameter(f"{params['path']} is not a folder", param_hint="'PATH'")
    _isolate(ctx, settings.config, params)
    try:
        run(settings.config, **settings.server)
    except KeyboardInterrupt:
        pass
    except (
        StoreLockedError,
        OSError,
        ImportError,
    ) as exc:  # ImportError: --http httptools, --loop uvloop
        click.echo(f"daisi serve: {exc}", err=True)
        ctx.exit(1)
