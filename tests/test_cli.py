"""The ``daisi`` command's client verbs, run as a user runs them (a subprocess) against
a real runtime: output, exit codes (0 ok, 1 remote failure, 2 usage), and what a bad
command line leaves behind (nothing)."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import TEST_DAISIES
from tests.support.daisi_folders import make_daisi

import daisi_async
from daisi_async.testing import LocalRuntime

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "daisies"
SRC = str(Path(daisi_async.__file__).resolve().parents[1])
TOKEN = "cli-token"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAISI_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [SRC, env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


def daisi(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``daisi ARGS`` in a subprocess (stdout and stderr captured apart)."""
    return subprocess.run(
        [sys.executable, "-m", "daisi_async", *args],
        capture_output=True,
        text=True,
        env=_env(env),
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    """Three example Daisies and a broken one; the tests call with their own token, so
    ``daisi runs`` lists only what this module made."""
    root = tmp_path_factory.mktemp("cli-daisies")
    for name in ("add-two-numbers", "always-fails", "live-logging"):
        shutil.copytree(EXAMPLES / name, root / name)
    make_daisi(root, "broken", {"daisi.toml": 'name = "Broken"\n', "app.py": "def f(:\n"})
    with LocalRuntime(root, tokens={TOKEN: "cli-user"}) as rt:
        rt.settle()
        yield rt


@pytest.fixture
def env(runtime: LocalRuntime) -> dict[str, str]:
    """The server and the token, as a user sets them."""
    return {"DAISI_BASE_URL": runtime.url, "DAISI_ACCESS_TOKEN": TOKEN}


def runs(env: dict[str, str], *args: str) -> list[dict[str, Any]]:
    done = daisi("runs", "--json", "--limit", "500", *args, env=env)
    assert done.returncode == 0, done.stderr
    found: list[dict[str, Any]] = json.loads(done.stdout)
    return found


# -- help and version ------------------------------------------------------------------------
def test_help_lists_the_verbs_and_shows_defaults() -> None:
    top = daisi("--help")
    assert top.returncode == 0
    for verb in ("call", "cancel", "logs", "ls", "runs", "serve", "status"):
        assert re.search(rf"^  {verb}\s", top.stdout, re.M), verb
    call = daisi("call", "--help")
    assert "[env var: DAISI_BASE_URL; default: http://127.0.0.1:8421]" in " ".join(
        call.stdout.split()
    )
    assert "DAISI_ACCESS_TOKEN" in call.stdout
    serve = " ".join(daisi("serve", "--help").stdout.split())
    for shown in ("[default: 8421;", "[default: .daisi]", "[default: 8GB]", "[default: warning]"):
        assert shown in serve, shown
    assert "--ready-file" not in serve  # hidden: for daisi_async.testing
    assert "[default: 20; x>=1]" in " ".join(daisi("runs", "--help").stdout.split())
    version = daisi("--version")
    assert version.stdout.strip() == f"daisi {daisi_async.__version__}"


def test_an_unknown_verb_or_option_is_a_usage_error() -> None:
    for args in (
        ["nope"],
        ["ls", "--nope"],
        ["runs", "--status", "DONE"],
        ["runs", "--limit", "0"],
    ):
        done = daisi(*args)
        assert done.returncode == 2, args
        assert "Error:" in done.stderr and not done.stdout


# -- ls --------------------------------------------------------------------------------------
def test_ls_shows_name_owner_state_endpoints_and_why_broken(env: dict[str, str]) -> None:
    done = daisi("ls", env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["NAME", "OWNER", "STATE", "ENDPOINTS"]
    assert re.search(r"^Add Two Numbers\s+local\s+(idle|ready)\s+compute$", done.stdout, re.M)
    assert re.search(r"^Always Fails\s+local\s+\w+\s+divide, fail$", done.stdout, re.M)
    assert re.search(r"^Broken\s+local\s+broken\s+-$", done.stdout, re.M)
    assert "broken:\n  Broken: SyntaxError" in done.stdout
    listed = json.loads(daisi("ls", "--json", env=env).stdout)
    by_name = {d["name"]: d for d in listed}
    assert [e["name"] for e in by_name["Always Fails"]["endpoints"]] == ["divide", "fail"]
    assert by_name["Broken"]["state"] == "broken" and "SyntaxError" in by_name["Broken"]["broken"]


# -- call ------------------------------------------------------------------------------------
def test_call_prints_the_result_and_the_live_log_on_stderr(env: dict[str, str]) -> None:
    done = daisi(
        "call", "Live Logging", "live_log_test", "firstNumber=1", "secondNumber=2", "delay=1",
        env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "3\n"
    assert "Step 2/2: 1.0 s elapsed" in done.stderr
    assert "Done: 1 + 2 = 3" in done.stderr
    assert "\x1b[" not in done.stderr  # no spinner drawn into a file


def test_call_values_are_json_or_text_and_results_json_or_repr(echo_runtime: LocalRuntime) -> None:
    env = {"DAISI_BASE_URL": echo_runtime.url}
    cases = [
        ('value=[1, "a", null]', '[\n  1,\n  "a",\n  null\n]\n'),
        ("value=hello", '"hello"\n'),
        ('value="5"', '"5"\n'),
        ("value=2.5", "2.5\n"),
        ("value={not json", '"{not json"\n'),
    ]
    for word, expected in cases:
        done = daisi("call", "Echo", "echo", word, env=env)
        assert (done.returncode, done.stdout) == (0, expected), (word, done.stderr)
    raw = daisi("call", "Echo", "blob", "size=3", env=env)
    assert (raw.returncode, raw.stdout) == (0, "b'\\x00\\x00\\x00'\n")
    as_json = json.loads(daisi("call", "Echo", "blob", "size=2", "--json", env=env).stdout)
    assert as_json["result_repr"] == "b'\\x00\\x00'" and "result" not in as_json
    assert as_json["status"] == "FINISHED" and UUID.match(as_json["id"])


def test_a_failed_run_exits_1_with_the_remote_traceback(env: dict[str, str]) -> None:
    done = daisi("call", "Always Fails", "divide", "numerator=3", env=env)
    assert done.returncode == 1
    assert done.stdout == ""
    assert "dividing 3 by 0" in done.stderr  # its log, live
    assert "failed: builtins.ZeroDivisionError: division by zero" in done.stderr
    assert "Remote traceback:\nTraceback (most recent call last):" in done.stderr
    assert "return numerator / denominator" in done.stderr
    as_json = daisi("call", "Always Fails", "fail", "message=no", "--json", env=env)
    assert as_json.returncode == 1
    body = json.loads(as_json.stdout)
    assert (body["status"], body["error"]["type"], body["error"]["message"]) == (
        "FAILED",
        "builtins.ValueError",
        "no",
    )
    assert "raise ValueError(message)" in body["error"]["traceback"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["compute", "firstNumber=1"], "missing 1 required positional argument: 'secondNumber'"),
        (["compute", "firstNumber=1", "secondNumber=2", "third=3"], "unexpected keyword"),
        (["compute", "firstNumber"], "expected KEY=VALUE, not 'firstNumber'"),
        (["compute", "firstNumber=1", "firstNumber=2"], "'firstNumber' is given twice"),
        (["compute", "=1"], "expected KEY=VALUE, not '=1'"),
    ],
)
def test_bad_arguments_exit_2_and_create_nothing(
    env: dict[str, str], args: list[str], message: str
) -> None:
    before = runs(env)
    done = daisi("call", "Add Two Numbers", *args, env=env)
    assert done.returncode == 2
    assert message in done.stderr and not done.stdout
    if "missing" in message:  # the endpoint's signature is shown
        assert "compute takes (firstNumber" in done.stderr
    assert runs(env) == before  # nothing was created
    good = daisi("call", "Add Two Numbers", "compute", "firstNumber=1", "secondNumber=2", env=env)
    assert (good.returncode, good.stdout) == (0, "3\n")


def test_unknown_daisi_endpoint_or_broken_daisi_exit_1(env: dict[str, str]) -> None:
    before = runs(env)
    cases = [
        (["Add Two Number", "compute"], "no Daisi named 'Add Two Number'"),
        (["Add Two Numbers", "comput"], "has no endpoint 'comput'; did you mean 'compute'?"),
        (["Broken", "f"], "is broken"),
    ]
    for args, message in cases:
        done = daisi("call", *args, env=env)
        assert done.returncode == 1, done.stderr
        assert message in done.stderr and not done.stdout
    assert runs(env) == before


def test_server_errors_and_bad_settings(env: dict[str, str]) -> None:
    refused = daisi("ls", "--base-url", "http://127.0.0.1:9")  # nothing listens there
    assert refused.returncode == 1
    assert "could not connect to http://127.0.0.1:9" in refused.stderr
    bad = daisi("ls", env={"DAISI_BASE_URL": "ftp://example.com"})
    assert bad.returncode == 2
    assert "Invalid value for '--base-url'" in bad.stderr
    refused_token = daisi("ls", "--token", "wrong", env=env)
    assert refused_token.returncode == 1, refused_token.stderr
    assert "Error:" in refused_token.stderr


# -- one execution by id ---------------------------------------------------------------------
def test_no_wait_then_logs_follow_status_and_runs(env: dict[str, str]) -> None:
    done = daisi(
        "call", "Live Logging", "live_log_test", "firstNumber=2", "secondNumber=3", "delay=1",
        "--no-wait", env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    eid = done.stdout.strip()
    assert UUID.match(eid)
    followed = daisi("logs", "-f", eid, env=env)
    assert followed.returncode == 0, followed.stderr
    lines = followed.stdout.splitlines()
    assert lines[-1] == "Done: 2 + 3 = 5" and "Step 1/2: 0.5 s elapsed" in lines
    assert daisi("logs", eid, env=env).stdout == followed.stdout  # the same, after the end
    status = daisi("status", eid, env=env)
    assert status.returncode == 0
    fields = dict(line.split(None, 1) for line in status.stdout.splitlines())
    assert (fields["id"], fields["endpoint"], fields["status"]) == (
        eid,
        "live_log_test",
        "FINISHED",
    )
    assert fields["daisi"].startswith("Live Logging (")
    record = json.loads(daisi("status", eid, "--json", env=env).stdout)
    assert (record["id"], record["status"]) == (eid, "FINISHED")
    newest = runs(env, "--daisi", "Live Logging", "--limit", "1")
    assert [r["id"] for r in newest] == [eid]
    table = daisi("runs", "--limit", "1", env=env).stdout.splitlines()
    assert table[0].split() == ["ID", "DAISI", "ENDPOINT", "STATUS", "CREATED", "TOOK"]
    assert table[1].startswith(f"{eid}  Live Logging  live_log_test  FINISHED  ")


def test_runs_filters_by_status(env: dict[str, str]) -> None:
    assert daisi("call", "Always Fails", "divide", env=env).returncode == 1
    failed = runs(env, "--status", "failed")
    assert failed and {r["status"] for r in failed} == {"FAILED"}
    both = runs(env, "--status", "FAILED", "--status", "finished")
    assert {r["status"] for r in both} == {"FAILED", "FINISHED"}
    unknown = daisi("runs", "--daisi", "Nope", env=env)
    assert unknown.returncode == 1 and "no Daisi named 'Nope'" in unknown.stderr


def test_cancel_stops_a_running_execution(env: dict[str, str]) -> None:
    started = daisi(
        "call", "Live Logging", "live_log_test", "firstNumber=1", "secondNumber=1", "delay=60",
        "--no-wait", env=env,
    )  # fmt: skip
    eid = started.stdout.strip()
    deadline = time.monotonic() + 60
    while json.loads(daisi("status", eid, "--json", env=env).stdout)["status"] != "RUNNING":
        assert time.monotonic() < deadline, "the execution never ran"
        time.sleep(0.2)
    done = daisi("cancel", eid, env=env)
    assert (done.returncode, done.stdout) == (0, "CANCELLED\n"), done.stderr
    assert json.loads(daisi("status", eid, "--json", env=env).stdout)["status"] == "CANCELLED"
    again = daisi("cancel", eid, env=env)
    assert (again.returncode, again.stdout) == (0, "CANCELLED\n")
    finished = runs(env, "--status", "finished", "--limit", "1")[0]["id"]
    ended = daisi("cancel", finished, env=env)
    assert (ended.returncode, ended.stdout) == (0, "FINISHED\n")
    assert "had already ended" in ended.stderr


def test_an_unknown_execution_id_exits_1(env: dict[str, str]) -> None:
    for verb in (["status"], ["logs"], ["logs", "-f"], ["cancel"]):
        eid = str(uuid.uuid4())
        done = daisi(*verb, eid, env=env)
        assert done.returncode == 1, verb
        assert f"no execution with id '{eid}'" in done.stderr and not done.stdout


def test_ctrl_c_during_call_cancels_the_run(env: dict[str, str]) -> None:
    code = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler);"
        "from daisi_async.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    args = ["call", "Live Logging", "live_log_test", "firstNumber=1", "secondNumber=1"]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args, "delay=60"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(env),
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()  # the run has started: it printed its first line
    assert "adding 1 and 1 over 60 seconds" in first
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    eid = re.search(r"cancelled execution (\S+)", err)
    assert eid, err
    record = json.loads(daisi("status", eid.group(1), "--json", env=env).stdout)
    assert record["status"] == "CANCELLED"


def test_the_spinner_draws_only_on_a_terminal(env: dict[str, str]) -> None:
    pytest.importorskip("rich")
    master, slave = pty.openpty()
    args = ["call", "Live Logging", "live_log_test", "firstNumber=1", "secondNumber=1"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "daisi_async", *args, "delay=1.5"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env=_env({**env, "COLUMNS": "120"}),
    )
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        assert ready, "no output for 60 s"
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the other side closed
            break
        if not chunk:
            break
        seen += chunk
    out, _ = proc.communicate(timeout=60)
    os.close(master)
    text = seen.decode(errors="replace")
    assert proc.returncode == 0 and out == b"2\n"  # the result, plain, on stdout (a pipe)
    assert "Live Logging.live_log_test" in text and " s)" in text  # the spinner's text
    assert "Done: 1 + 1 = 2" in text  # the log lines go above it


# -- other servers ---------------------------------------------------------------------------
def test_a_legacy_server_has_no_execution_list(tmp_path: Path) -> None:
    with LocalRuntime(TEST_DAISIES, legacy_only=True, store=tmp_path / "store") as rt:
        env = {"DAISI_BASE_URL": rt.url}
        call = daisi("call", "Echo", "add", "a=1", "b=2", env=env)
        assert (call.returncode, call.stdout) == (0, "3.0\n"), call.stderr
        done = daisi("runs", env=env)
        assert done.returncode == 1
        assert "can't list executions: it speaks only the legacy protocol" in done.stderr
        status = daisi("status", str(uuid.uuid4()), env=env)
        assert status.returncode == 1 and "can't find an execution by its id" in status.stderr


def test_serve_without_the_server_extra_says_how_to_install(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['uvicorn'] = None; sys.modules['starlette'] = None;"
        "from daisi_async.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    serve = subprocess.run(
        [sys.executable, "-c", code, "serve", str(tmp_path), "--store", str(tmp_path / "s")],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert serve.returncode == 2
    assert "daisi serve needs the server extra: pip install 'daisi-async[server]'" in serve.stderr
    assert not (tmp_path / "s").exists()
    helped = subprocess.run(
        [sys.executable, "-c", code, "ls", "--help"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert helped.returncode == 0 and "List the Daisies" in helped.stdout
