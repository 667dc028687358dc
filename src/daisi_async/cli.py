"""The ``daisi`` command.

Example::

    daisi serve examples/daisies --port 8421
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from ._values import parse_size as _parse_size
from .server.workers.environment import is_variable_name


def parse_size(text: str) -> int:
    """``"8GB"``, ``"512MiB"``, ``"1048576"`` -> bytes (binary units; see
    :func:`daisi_async._values.parse_size`)."""
    try:
        return _parse_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
        if n < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}")
        return n

    return parse


_positive_int = _at_least(1)
_count = _at_least(0)


def _positive_float(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < x < float("inf"):
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return x


def _url(text: str) -> str:
    if not re.match(r"^(https?|file)://\S+$", text):
        raise argparse.ArgumentTypeError(f"not an http(s) or file URL: {text!r}")
    return text


def _place(text: str) -> str:
    """A ``--find-links`` value: a URL as it is, a path made absolute (uv runs in each
    Daisi's folder)."""
    if "://" in text:
        return _url(text)
    path = Path(text).expanduser()
    if not path.exists():
        raise argparse.ArgumentTypeError(f"no such file or folder: {text!r}")
    return str(path.resolve())


def _env_name(text: str) -> str:
    if not is_variable_name(text):
        raise argparse.ArgumentTypeError(f"not an environment variable name: {text!r}")
    return text


def _cluster(text: str) -> str:
    from .server.backends.dask.address import parse_cluster

    try:
        return str(parse_cluster(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``daisi`` command."""
    parser = argparse.ArgumentParser(prog="daisi", description="Call and serve Daisies.")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="serve a folder of Daisies (the local runtime)")
    serve.add_argument("path", type=Path, help="a Daisi folder, or a folder of Daisi folders")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8421, help="0 picks a free port")
    serve.add_argument(
        "--store",
        type=Path,
        default=Path(".daisi"),
        help="where executions, logs and blobs are kept",
    )
    serve.add_argument(
        "--tokens", type=Path, help="tokens file: JSON {token: user} or 'TOKEN USER' lines"
    )
    serve.add_argument(
        "--workers",
        type=_count,
        default=0,
        help="worker processes each Daisi keeps running from startup, even idle (started in"
        " the background); the others start on a Daisi's first calls (default 0)",
    )
    serve.add_argument(
        "--max-workers",
        type=_positive_int,
        help="the most workers a Daisi may have (asked for at run time or in daisi.toml);"
        " default: the number of CPU cores",
    )
    serve.add_argument(
        "--timeout", type=float, default=1800.0, help="time limit per execution, seconds"
    )
    serve.add_argument(
        "--memory-limit", type=parse_size, default=parse_size("8GB"), help="memory limit per worker"
    )
    serve.add_argument(
        "--max-body", type=parse_size, default=parse_size("1GB"), help="largest request body"
    )
    serve.add_argument(
        "--owner", default="local", help="owner of Daisies whose daisi.toml names none"
    )
    serve.add_argument("--legacy-only", action="store_true", help="serve only the pydaisi routes")
    serve.add_argument(
        "--sync",
        choices=["normal", "full"],
        default="normal",
        help="normal: what was acknowledged survives a crash of the runtime process; "
        "full: also a crash of the machine (an fsync per commit)",
    )
    serve.add_argument(
        "--header-timeout",
        type=_positive_float,
        default=5.0,
        help="close a connection whose request headers are not complete after this many seconds",
    )
    serve.add_argument(
        "--limit-concurrency",
        type=_positive_int,
        default=1000,
        help="answer 503 to requests beyond this many open connections or running requests",
    )
    serve.add_argument(
        "--http",
        choices=["auto", "h11", "httptools"],
        default="auto",
        help="HTTP parser: httptools when installed (auto), or h11",
    )
    serve.add_argument(
        "--env-pass",
        action="append",
        type=_env_name,
        default=[],
        metavar="NAME",
        help="pass this environment variable to the Daisies' workers (repeatable); "
        "they get only an allowlist (PATH, HOME, locale, ...) otherwise",
    )
    envs = serve.add_argument_group(
        "environments",
        "a Daisi with a requirements.txt runs in an environment of its own, built with uv"
        " and kept in the store",
    )
    envs.add_argument("--index-url", type=_url, metavar="URL", help="the package index (PyPI)")
    envs.add_argument(
        "--find-links",
        action="append",
        type=_place,
        default=[],
        metavar="PATH_OR_URL",
        help="also look for packages in this folder or page (repeatable)",
    )
    envs.add_argument(
        "--offline", action="store_true", help="build environments without the network"
    )
    envs.add_argument(
        "--shared-env",
        action="store_true",
        help="run every Daisi in the server's environment (a missing requirement is a warning)",
    )
    serve.add_argument(
        "--idle-timeout",
        type=_positive_float,
        default=600.0,
        metavar="SECONDS",
        help="a worker idle this long exits, down to the Daisi's min_workers (default 600)",
    )
    serve.add_argument(
        "--import-timeout",
        type=_positive_float,
        default=60.0,
        metavar="SECONDS",
        help="a worker that takes longer to import its Daisi is stopped and the start"
        " fails (default 60)",
    )
    serve.add_argument(
        "--reload",
        action="store_true",
        help="watch the folder: reload edited Daisies (new calls get new workers), add new"
        " ones, drop removed ones",
    )
    serve.add_argument(
        "--cluster",
        type=_cluster,
        metavar="ADDRESS",
        help="run executions on a Dask cluster: its scheduler (tcp://HOST:8786), or local:N"
        " to start N Dask workers here; needs the cluster extra",
    )
    serve.add_argument("--ready-file", type=Path, help=argparse.SUPPRESS)
    return parser


def _serve(args: argparse.Namespace) -> int:
    try:
        from .server.auth import load_tokens
        from .server.engine import RuntimeConfig
        from .server.envs import EnvOptions
        from .server.serve import run
        from .server.store import StoreLockedError
        from .server.workers import MAX_WORKERS
    except ImportError as exc:  # pragma: no cover - depends on the install
        print(
            f"daisi serve needs the server extra: pip install 'daisi-async[server]' ({exc})",
            file=sys.stderr,
        )
        return 2
    if not args.path.is_dir():
        print(f"daisi serve: {args.path} is not a folder", file=sys.stderr)
        return 2
    tokens = {}
    if args.tokens is not None:
        try:
            tokens = load_tokens(args.tokens)
        except (OSError, ValueError) as exc:
            print(f"daisi serve: can't read the tokens file: {exc}", file=sys.stderr)
            return 2
    config = RuntimeConfig(
        root=args.path.resolve(),
        store_dir=args.store.resolve(),
        tokens=tokens,
        workers=args.workers,
        timeout=args.timeout,
        memory_limit=args.memory_limit,
        max_body_bytes=args.max_body,
        legacy_only=args.legacy_only,
        sync=args.sync.upper(),
        default_owner=args.owner,
        env_pass=tuple(args.env_pass),
        envs=EnvOptions(
            index_url=args.index_url,
            find_links=tuple(args.find_links),
            offline=args.offline,
            shared=args.shared_env,
        ),
        idle_timeout=args.idle_timeout,
        import_timeout=args.import_timeout,
        reload=args.reload,
        cluster=args.cluster,
    )
    if args.max_workers is not None:
        config.max_workers = args.max_workers
    elif args.cluster:  # the cap is the cluster's, not this machine's cores
        config.max_workers = MAX_WORKERS
    if config.max_workers > MAX_WORKERS:
        print(f"daisi serve: --max-workers can't be over {MAX_WORKERS}", file=sys.stderr)
        return 2
    if args.workers > config.max_workers:
        print(
            f"daisi serve: --workers {args.workers} is over the cap of {config.max_workers}"
            " workers per Daisi; lower --workers or raise --max-workers",
            file=sys.stderr,
        )
        return 2
    try:
        run(
            config,
            host=args.host,
            port=args.port,
            ready_file=args.ready_file,
            header_timeout=args.header_timeout,
            limit_concurrency=args.limit_concurrency,
            http=args.http,
        )
    except KeyboardInterrupt:
        pass
    except StoreLockedError as exc:
        print(f"daisi serve: {exc}", file=sys.stderr)
        return 1
    except (OSError, ImportError) as exc:  # ImportError: --http httptools without it
        print(f"daisi serve: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``daisi`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    return 2  # pragma: no cover - argparse rejects unknown commands
