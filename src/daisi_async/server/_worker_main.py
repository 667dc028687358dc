"""The worker process program: one warm process that runs one Daisi's executions.

Started by :class:`daisi_async.server.workers.WorkerPool` as::

    python -m daisi_async.server._worker_main --fd N --dir DAISI_DIR --entry app.py

``N`` is an inherited socket; the worker speaks :mod:`daisi_async.server._frames`
over it. The worker

1. moves to the Daisi's folder and puts it first on ``sys.path`` (sibling
   modules import);
2. imports the entry module **as** ``__main__`` with its top-level
   ``if __name__ == "__main__":`` blocks removed (their ``else`` branches are
   kept), so that dill pickles classes and functions defined in the Daisi by
   value and a result travels with its class to a client that lacks the code;
3. reports ``{"op": "ready", "pid"}`` or ``{"op": "import_error", "error"}``;
4. runs ``{"op": "run"}`` frames one at a time until ``{"op": "exit"}`` or the
   end of the stream.

Client bytes (dill arguments) are opened only here, never in the server.

Output: during an execution, ``sys.stdout`` and ``sys.stderr`` are line writers
that send every complete line to the server at once as a ``log`` frame, from
any thread; ``logging`` goes to the current ``sys.stderr``. Outside executions
(at import time, from threads that outlive their execution) output goes to the
worker's original streams: file descriptors 1 and 2, which the pool connects to
``/dev/null`` and to the server's own stderr respectively. Output written
straight to the file descriptors (C extensions, subprocesses) is not captured.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import builtins
import contextlib
import functools
import inspect
import io
import json
import logging
import os
import pickle
import platform
import signal
import socket
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable, Mapping
from typing import Any, NoReturn, TextIO

import dill

from daisi_async import _values
from daisi_async.server import _frames

DEFAULT_INLINE_LIMIT = 65536
"""Results up to this many dill bytes travel in the ``done`` frame; larger ones go to a file."""

MAX_LINE = 1 << 20
"""A partial line longer than this (in characters) is sent as a line of its own."""

_SMALL_SEND = 1 << 16
_LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"
_THIS_FILE = os.path.normcase(os.path.abspath(__file__))
_ASYNCIO_DIR = os.path.normcase(os.path.dirname(os.path.abspath(asyncio.__file__))) + os.sep
_AST_FILE = os.path.normcase(os.path.abspath(ast.__file__))


def _exit_now(code: int = 0) -> NoReturn:
    """Leave at once: no atexit handlers, no waiting for the Daisi's threads."""
    for stream in (sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # best effort on the way out
            pass
    os._exit(code)


class _Channel:
    """The worker's end of the socket: blocking reads, thread-safe frame sends."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()
        self._rfile = sock.makefile("rb")

    def recv(self) -> tuple[dict[str, Any], bytes] | None:
        """The next frame from the server, or ``None`` at the end of the stream."""
        return _frames.read_frame(self._rfile)

    def send(self, header: Mapping[str, Any], body: bytes = b"") -> None:
        """Send one frame; exit the process if the server has gone away."""
        head = _frames.encode_head(header, len(body))
        with self._lock:
            try:
                if len(body) <= _SMALL_SEND:
                    self._sock.sendall(head + body)
                else:
                    self._sock.sendall(head)
                    self._sock.sendall(body)
            except OSError:
                _exit_now()

    def send_raw(self, data: bytes) -> None:
        """Send already encoded frames as one write."""
        with self._lock:
            try:
                self._sock.sendall(data)
            except OSError:
                _exit_now()


class _BinaryAdapter(io.RawIOBase):
    """``sys.stdout.buffer`` of a line writer: bytes are decoded as UTF-8."""

    def __init__(self, text: _LineWriter) -> None:
        super().__init__()
        self._text = text

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        data = bytes(b)
        self._text.write(data.decode("utf-8", "replace"))
        return len(data)


class _LineWriter(io.TextIOBase):
    """A text stream that sends each complete line as a ``log`` frame, immediately.

    Between executions (no current execution id) it writes to ``passthrough``.
    """

    def __init__(self, channel: _Channel, name: str, passthrough: TextIO | None) -> None:
        super().__init__()
        self._channel = channel
        self._name = name
        self._passthrough = passthrough
        self._lock = threading.RLock()
        self._eid: str | None = None
        self._partial: list[str] = []
        self._partial_len = 0
        self._buffer = _BinaryAdapter(self)

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return "strict"

    @property
    def buffer(self) -> _BinaryAdapter:
        """A binary view: bytes written here are decoded and captured too."""
        return self._buffer

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        """The worker's original descriptor (writes to it are not captured)."""
        if self._passthrough is None:
            raise io.UnsupportedOperation("fileno")
        return self._passthrough.fileno()

    def begin(self, eid: str) -> None:
        """Start capturing for execution ``eid``."""
        with self._lock:
            self._eid = eid
            self._partial = []
            self._partial_len = 0

    def end(self) -> None:
        """Send a pending partial line and stop capturing."""
        with self._lock:
            if self._eid is not None and self._partial:
                self._send_lines(self._eid, ["".join(self._partial)])
            self._eid = None
            self._partial = []
            self._partial_len = 0

    def _send_lines(self, eid: str, lines: list[str]) -> None:
        data = b"".join(
            _frames.encode_head({"op": "log", "eid": eid, "stream": self._name, "line": line})
            for line in lines
        )
        self._channel.send_raw(data)

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        with self._lock:
            eid = self._eid
            if eid is None:
                if self._passthrough is not None:
                    with contextlib.suppress(Exception):  # nowhere to report it
                        self._passthrough.write(s)
                return len(s)
            if "\n" not in s:
                self._partial.append(s)
                self._partial_len += len(s)
                if self._partial_len > MAX_LINE:
                    self._send_lines(eid, ["".join(self._partial)])
                    self._partial = []
                    self._partial_len = 0
                return len(s)
            parts = s.split("\n")
            if self._partial:
                parts[0] = "".join(self._partial) + parts[0]
            last = parts.pop()
            self._partial = [last] if last else []
            self._partial_len = len(last)
            self._send_lines(eid, parts)
        return len(s)

    def flush(self) -> None:
        """Lines are sent as soon as they are complete; only the passthrough is flushed."""
        if self._eid is None and self._passthrough is not None:
            with contextlib.suppress(Exception):  # nowhere to report it
                self._passthrough.flush()


class _CurrentStderrHandler(logging.Handler):
    """A logging handler that writes to whatever ``sys.stderr`` is at emit time."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            msg = self.format(record)
            sys.stderr.write(msg + "\n")
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


def _configure_logging() -> None:
    root = logging.getLogger()
    handler = _CurrentStderrHandler()
    handler.setFormatter(logging.Formatter(_LOG_FORMAT))
    root.addHandler(handler)
    root.setLevel(logging.INFO)


# --- importing the Daisi -----------------------------------------------------------------


def _is_main_guard(node: ast.stmt) -> bool:
    """``if __name__ == "__main__":`` (either operand order)."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    if not (
        isinstance(test, ast.Compare)
        and len(test.ops) == 1
        and isinstance(test.ops[0], ast.Eq)
        and len(test.comparators) == 1
    ):
        return False
    left, right = test.left, test.comparators[0]

    def is_name(n: ast.expr) -> bool:
        return isinstance(n, ast.Name) and n.id == "__name__"

    def is_main(n: ast.expr) -> bool:
        return isinstance(n, ast.Constant) and n.value == "__main__"

    return (is_name(left) and is_main(right)) or (is_main(left) and is_name(right))


def _strip_main_guards(body: list[ast.stmt]) -> list[ast.stmt]:
    out: list[ast.stmt] = []
    for node in body:
        if _is_main_guard(node):
            assert isinstance(node, ast.If)
            out.extend(node.orelse)  # the "imported" branch, if any
        else:
            out.append(node)
    return out


def load_entry(directory: str, entry: str) -> types.ModuleType:
    """Import ``directory/entry`` as ``__main__`` without running its main-guard blocks."""
    path = os.path.join(directory, entry)
    with open(path, "rb") as f:
        source = f.read()
    tree = ast.parse(source, filename=path)
    tree.body = _strip_main_guards(tree.body)
    code = compile(tree, path, "exec", dont_inherit=True)
    module = types.ModuleType("__main__")
    module.__file__ = path
    module.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = module
    # dill resolves "__main__" through the module it saw at import time: point it at the
    # Daisi, so functions of classes sent from a caller's __main__ get the Daisi's globals
    # and travel back by reference to the caller's own __main__.
    dill._dill._main_module = module
    exec(code, module.__dict__)
    return module


# --- errors ------------------------------------------------------------------------------


def _is_internal_file(filename: str) -> bool:
    name = os.path.normcase(os.path.abspath(filename))
    return name in (_THIS_FILE, _AST_FILE) or name.startswith(_ASYNCIO_DIR)


def _format_exception(exc: BaseException, *, strip: bool = True) -> str:
    tb = exc.__traceback__
    if strip:
        while tb is not None and _is_internal_file(tb.tb_frame.f_code.co_filename):
            tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def _qualified_type(exc: BaseException) -> str:
    cls = type(exc)
    return f"{cls.__module__}.{cls.__qualname__}"


def _error(kind: str, message: str, tb: str) -> dict[str, str]:
    return {"type": kind, "message": message, "traceback": tb}


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<unprintable {type(exc).__name__}>"


# --- arguments and calling ---------------------------------------------------------------


class _ArgumentFailure(Exception):
    def __init__(self, error: dict[str, str]) -> None:
        super().__init__(error["message"])
        self.error = error


def _open_argument(spec: Any, body: bytes) -> Any:
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ValueError(f"malformed argument descriptor {spec!r}")
    if "json" in spec:
        return spec["json"]
    if "file" in spec:
        with open(spec["file"], "rb") as f:
            data = f.read()
        return dill.loads(data)
    if "body" in spec:
        offset, length = spec["body"]
        if not (offset >= 0 and length >= 0 and offset + length <= len(body)):
            raise ValueError("argument bytes lie outside the frame body")
        return dill.loads(memoryview(body)[offset : offset + length])
    raise ValueError(f"malformed argument descriptor {spec!r}")


def _open_arguments(args: Mapping[str, Any], body: bytes) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, spec in args.items():
        try:
            values[name] = _open_argument(spec, body)
        except BaseException as exc:
            why = f"{type(exc).__name__}: {_safe_str(exc)}"
            message = (
                f"could not unpickle argument {name!r}: {why} (this worker runs "
                f"Python {platform.python_version()} with dill {dill.__version__})"
            )
            raise _ArgumentFailure(
                _error("daisi.ArgumentError", message, _format_exception(exc, strip=False))
            ) from None
    return values


@functools.lru_cache(maxsize=1024)
def _parameters(fn: Callable[..., Any]) -> tuple[inspect.Parameter, ...]:
    return tuple(inspect.signature(fn).parameters.values())


def bind_arguments(
    fn: Callable[..., Any], values: Mapping[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    """Turn named argument values into ``(args, kwargs)`` for ``fn``.

    Positional-only parameters are passed positionally; the value of a ``*args``
    parameter (a sequence) is expanded, and then the parameters before it are
    passed positionally too; the value of a ``**kwargs`` parameter (a mapping) is
    merged; other names are passed as keywords (Python reports the unknown ones).
    """
    try:
        params = _parameters(fn)
    except (TypeError, ValueError):
        return [], dict(values)
    var_pos = next((p for p in params if p.kind is p.VAR_POSITIONAL), None)
    var_kw = next((p for p in params if p.kind is p.VAR_KEYWORD), None)
    expand = var_pos is not None and var_pos.name in values
    remaining = dict(values)
    positional: list[Any] = []
    for p in params:
        if p.kind is p.POSITIONAL_ONLY or (expand and p.kind is p.POSITIONAL_OR_KEYWORD):
            if p.name in remaining:
                positional.append(remaining.pop(p.name))
            elif p.default is not p.empty:
                positional.append(p.default)
            else:
                raise TypeError(f"{fn.__name__}() missing required argument: {p.name!r}")
        elif p.kind is p.VAR_POSITIONAL:
            if p.name in remaining:
                extra = remaining.pop(p.name)
                if isinstance(extra, (str, bytes, Mapping)) or not hasattr(extra, "__iter__"):
                    raise TypeError(f"argument {p.name!r} (*{p.name}) must be a list")
                positional.extend(extra)
            break
    kwargs: dict[str, Any] = {}
    if var_kw is not None and var_kw.name in remaining:
        merged = remaining.pop(var_kw.name)
        if not isinstance(merged, Mapping):
            raise TypeError(f"argument {var_kw.name!r} (**{var_kw.name}) must be a dict")
        kwargs.update(merged)
    kwargs.update(remaining)
    return positional, kwargs


def _call(module: types.ModuleType, endpoint: str, values: Mapping[str, Any]) -> Any:
    fn = getattr(module, endpoint, None)
    if endpoint.startswith("_") or not callable(fn):
        raise AttributeError(f"the Daisi has no endpoint {endpoint!r}")
    args, kwargs = bind_arguments(fn, values)
    result = fn(*args, **kwargs)
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    return result


# --- results -----------------------------------------------------------------------------


# What a result is (plain data for the C pickler, strict JSON to inline) is decided by
# the project's one rule, shared with the client (:mod:`daisi_async._values`).
classify = _values.classify
PLAIN_DATA_NODES = _values.PLAIN_DATA_NODES


def _json_text(value: object, limit: int) -> str | None:
    """Compact JSON text of a strict JSON value, if it has at most ``limit`` characters.

    None too when a string in the value is not valid Unicode (a lone surrogate): UTF-8
    JSON can't carry it, so such a result travels as dill only and comes back exact.
    """
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (ValueError, TypeError, RecursionError):
        return None
    if len(text) > limit:
        return None
    # The text is ASCII: surrogates (lone, or halves of a character beyond U+FFFF) appear
    # as \udXXX escapes. Only then look closer (rare; the text is at most ``limit`` long).
    if "\\ud" in text:
        try:
            json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
        except UnicodeEncodeError:
            return None
    return text


class _SiblingModules:
    """Modules loaded from the Daisi's folder (other than ``__main__``), cached per scan."""

    def __init__(self, directory: str) -> None:
        roots = {
            os.path.normcase(os.path.abspath(directory)),
            os.path.normcase(os.path.realpath(directory)),
        }
        self._roots = tuple(r.rstrip(os.sep) + os.sep for r in roots)
        self._scanned_len = -1
        self._names: list[str] = []

    def names(self) -> list[str]:
        modules = sys.modules
        if len(modules) == self._scanned_len:
            return self._names
        names: list[str] = []
        for name, mod in list(modules.items()):
            if name == "__main__" or mod is None:
                continue
            try:
                file = getattr(mod, "__file__", None)
            except Exception:
                continue
            if not isinstance(file, str):
                continue
            file = os.path.normcase(os.path.abspath(file))
            for root in self._roots:
                if file.startswith(root):
                    rest = file[len(root) :]
                    if "site-packages" not in rest and "dist-packages" not in rest:
                        names.append(name)
                    break
        self._names = names
        self._scanned_len = len(modules)
        return names


def _dumps_by_value(result: Any, siblings: _SiblingModules) -> bytes:
    """dill bytes of ``result``, with classes from the Daisi's own modules pickled by value.

    The sibling modules are hidden from ``sys.modules`` while pickling, so dill
    cannot find them by reference.
    """
    hidden: list[tuple[str, Any]] = []
    try:
        for name in siblings.names():
            mod = sys.modules.get(name)
            if mod is not None:
                hidden.append((name, mod))
                sys.modules[name] = None  # type: ignore[assignment]
        data: bytes = dill.dumps(result, protocol=5)
        return data
    finally:
        for name, mod in hidden:
            if sys.modules.get(name, mod) is None:
                sys.modules[name] = mod


def _result_frame(
    eid: str,
    result: Any,
    *,
    inline_limit: int,
    result_path: str | None,
    siblings: _SiblingModules,
) -> tuple[dict[str, Any], bytes]:
    plain, strict_json = classify(result, json_nodes=inline_limit + 1)
    try:
        data = pickle.dumps(result, protocol=5) if plain else _dumps_by_value(result, siblings)
    except BaseException as exc:
        message = (
            f"result of type {type(result).__qualname__!r} could not be serialized: "
            f"{type(exc).__name__}: {_safe_str(exc)}"
        )
        error = _error("daisi.ResultError", message, _format_exception(exc, strip=False))
        return {"op": "done", "eid": eid, "ok": False, "error": error}, b""
    header: dict[str, Any] = {"op": "done", "eid": eid, "ok": True, "size": len(data)}
    if strict_json:
        text = _json_text(result, inline_limit)
        if text is not None:
            header["json"] = text
    if len(data) <= inline_limit or not result_path:
        return header, data
    try:
        tmp = result_path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, result_path)
    except OSError as exc:
        message = f"the result could not be stored: {type(exc).__name__}: {exc}"
        error = _error("daisi.ResultError", message, _format_exception(exc, strip=False))
        return {"op": "done", "eid": eid, "ok": False, "error": error}, b""
    header["file"] = result_path
    return header, b""


# --- the loop ----------------------------------------------------------------------------


class _Worker:
    def __init__(
        self,
        channel: _Channel,
        module: types.ModuleType,
        out: _LineWriter,
        err: _LineWriter,
        siblings: _SiblingModules,
    ) -> None:
        self.channel = channel
        self.module = module
        self.out = out
        self.err = err
        self.siblings = siblings

    def run(self, header: dict[str, Any], body: bytes) -> None:
        eid = str(header.get("eid", ""))
        endpoint = str(header.get("endpoint", ""))
        args = header.get("args") or {}
        inline_limit = int(header.get("inline_limit", DEFAULT_INLINE_LIMIT))
        result_path = header.get("result_path")
        error: dict[str, str] | None = None
        result: Any = None
        self.out.begin(eid)
        self.err.begin(eid)
        sys.stdout, sys.stderr = self.out, self.err
        try:
            try:
                values = _open_arguments(args, body)
                result = _call(self.module, endpoint, values)
            except _ArgumentFailure as failure:
                error = failure.error
            except BaseException as exc:
                error = _error(_qualified_type(exc), _safe_str(exc), _format_exception(exc))
        finally:
            sys.stdout, sys.stderr = self.out, self.err
            self.out.end()
            self.err.end()
        if error is not None:
            del result
            self.channel.send({"op": "done", "eid": eid, "ok": False, "error": error})
            return
        reply, data = _result_frame(
            eid,
            result,
            inline_limit=inline_limit,
            result_path=result_path if isinstance(result_path, str) else None,
            siblings=self.siblings,
        )
        del result
        self.channel.send(reply, data)

    def serve(self) -> None:
        while True:
            try:
                frame = self.channel.recv()
            except (OSError, _frames.FrameError):
                return
            if frame is None:
                return
            header, body = frame
            op = header.get("op")
            if op == "exit":
                return
            if op == "run":
                self.run(header, body)


def _die_with_parent() -> None:
    """Exit when the runtime dies, even in the middle of a silent job.

    Linux delivers SIGKILL on the parent's death (prctl PR_SET_PDEATHSIG); elsewhere,
    and as a backstop, a daemon thread notices that the parent changed.
    """
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG = 1
    if os.getppid() != parent:  # the parent died before the signal was armed
        os._exit(0)

    def watch() -> None:
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, name="daisi-parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    """Run the worker; see the module docstring."""
    # ``python -m`` put the launching directory first on sys.path: not the Daisi's business.
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]
    parser = argparse.ArgumentParser(prog="daisi-worker")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--entry", required=True)
    ns = parser.parse_args(argv)
    _die_with_parent()

    os.set_inheritable(ns.fd, False)  # the Daisi's subprocesses must not hold the socket
    channel = _Channel(socket.socket(fileno=ns.fd))
    directory = os.path.abspath(ns.dir)
    os.chdir(directory)
    sys.path.insert(0, directory)
    sys.argv = [os.path.join(directory, ns.entry)]

    out = _LineWriter(channel, "stdout", sys.stdout)
    err = _LineWriter(channel, "stderr", sys.stderr)
    sys.stdout, sys.stderr = out, err
    _configure_logging()

    original_main = sys.modules.get("__main__")
    try:
        module = load_entry(directory, ns.entry)
    except BaseException as exc:
        error = _error(_qualified_type(exc), _safe_str(exc), _format_exception(exc))
        channel.send({"op": "import_error", "error": error})
        _exit_now(0)
    channel.send({"op": "ready", "pid": os.getpid()})
    worker = _Worker(channel, module, out, err, _SiblingModules(directory))
    worker.serve()
    del original_main
    _exit_now(0)


if __name__ == "__main__":
    # Run the imported copy, so that this program's own names live in
    # ``daisi_async.server._worker_main`` rather than in ``__main__`` (which
    # becomes the Daisi's module).
    from daisi_async.server._worker_main import main as _main

    sys.exit(_main())
