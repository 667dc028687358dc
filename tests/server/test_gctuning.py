"""The runtime's process runs with the collector set for a server (server/gctuning.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from daisi_async.server.gctuning import THRESHOLDS

SCRIPT = textwrap.dedent(
    """
    import gc, json
    import daisi_async.server.serve as serve_module

    async def serve(*args, **kwargs):  # the server itself is not needed here
        return None

    before = gc.get_threshold()
    serve_module.serve = serve
    serve_module.run(None, host="127.0.0.1", port=0, loop="asyncio")
    print(json.dumps({"before": before, "after": gc.get_threshold(),
                      "frozen": gc.get_freeze_count()}))
    """
)


def test_the_serving_process_freezes_its_startup_objects_and_collects_less_often() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, check=True
    )
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert tuple(seen["before"]) != THRESHOLDS  # (Python's defaults until it serves)
    assert tuple(seen["after"]) == THRESHOLDS
    assert seen["frozen"] > 10_000  # the modules and objects made before serving
