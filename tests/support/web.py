"""Daisies and helpers shared by the web page, list-route and browser tests.

:func:`write_daisies` makes a folder with two example Daisies (Add Two Numbers, Live
Logging), a public probe whose code prints and returns markup, a private Daisi of
``alice``, and a Daisi that fails to import; the runtimes of these tests serve it with
:data:`TOKENS`.
"""

from __future__ import annotations

import shutil
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "daisies"
TOKENS = {"alice-token": "alice", "bob-token": "bob"}
ALICE = {"Authorization": "token alice-token"}
BOB = {"Authorization": "token bob-token"}

MARKUP = '<script>window.__pwned = 1</script><img src="x" onerror="window.__pwned = 2">'
"""Text that runs code if a page ever puts it into HTML unescaped."""

PROBE_APP = '''
"""Web Probe: endpoints whose output is hostile markup, and a slow one."""

import time


def shout(text: str = "hello") -> str:
    """Print ``text`` as a log line, then return it.

    Args:
        text: What to print and return.
    """
    print(text, flush=True)
    return text


def slow(seconds: float = 60.0) -> float:
    """Print a line, then sleep ``seconds``."""
    print("started", flush=True)
    time.sleep(seconds)
    return seconds


def payload(size: int = 10) -> bytes:
    """``size`` zero bytes (a result that is not JSON)."""
    return bytes(size)


def fail(message: str = "boom") -> None:
    """Raise ValueError(message)."""
    raise ValueError(message)
'''

PROBE_DOC = f"""# Web Probe

A description with raw HTML, which must be shown as text: {MARKUP}

[a link that must not run](javascript:window.__pwned=3)
"""

SECRET_APP = '''
def recipe(x: int = 1) -> int:
    """The secret: double it."""
    return x * 2
'''


BROKEN_APP = '''raise ImportError("a <missing> module")


def never() -> None:
    """Never callable: the module fails to import."""
'''


def write_daisies(root: Path) -> Path:
    """The test folder of Daisies under ``root``."""
    for name in ("add-two-numbers", "live-logging"):
        shutil.copytree(EXAMPLES / name, root / name)
    probe = root / "web-probe"
    probe.mkdir()
    (probe / "daisi.toml").write_text(
        'name = "Web Probe"\nworkers = 2\ndescription = "Prints markup <b>bold</b>."\n'
    )
    (probe / "app.py").write_text(textwrap.dedent(PROBE_APP))
    (probe / "DAISI.md").write_text(PROBE_DOC)
    secret = root / "secret-garden"
    secret.mkdir()
    (secret / "daisi.toml").write_text(
        'name = "Secret Garden"\nowner = "alice"\npublic = false\ndescription = "Private."\n'
    )
    (secret / "app.py").write_text(textwrap.dedent(SECRET_APP))
    broken = root / "broken-bits"
    broken.mkdir()
    (broken / "app.py").write_text(BROKEN_APP)
    return root


def daisi_id(client: httpx.Client, name: str, headers: dict[str, str] | None = None) -> str:
    """The id of the Daisi ``name`` (``client`` is based at ``/pebble-api``)."""
    r = client.get(f"/v1/daisies/{name}", headers=headers or {})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def submit(
    client: httpx.Client,
    did: str,
    endpoint: str,
    args: dict[str, Any],
    headers: dict[str, str] | None = None,
    *,
    wait: float = 30,
) -> dict[str, Any]:
    """Submit one execution (v1), waiting up to ``wait`` seconds for its end."""
    r = client.post(
        f"/v1/daisies/{did}/executions",
        params={"wait": wait},
        json={"endpoint": endpoint, "arguments": {k: {"value": v} for k, v in args.items()}},
        headers=headers or {},
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def wait_until(predicate: Any, *, timeout: float = 30.0, what: str = "the condition") -> Any:
    """Poll ``predicate`` until it returns a true value (returned) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
