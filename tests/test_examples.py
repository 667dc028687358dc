"""Every seed documentation example (examples/seed/*.py) and the quick start run as written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from daisi_async.testing import LocalRuntime

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SEED = sorted((EXAMPLES / "seed").glob("*.py"))


def _run(script: Path, url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DAISI_BASE_URL": url}
    return subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )


@pytest.mark.parametrize("script", SEED, ids=[p.stem for p in SEED])
def test_seed_example(script: Path, daisi_runtime: LocalRuntime, tmp_path: Path) -> None:
    out = _run(script, daisi_runtime.url, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr


def test_quickstart(daisi_runtime: LocalRuntime, tmp_path: Path) -> None:
    out = _run(EXAMPLES / "quickstart.py", daisi_runtime.url, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "got a MapStack with 11 layers" in out.stdout
    assert "all correct" in out.stdout
