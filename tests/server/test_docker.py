"""The runtime's ``Dockerfile``: its command is a valid ``daisi serve``; the image builds
and serves the example Daisies (only where ``docker`` has an engine)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

from daisi_async.cli.serve import settings_of

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def _instruction(name: str) -> str:
    lines = [line for line in DOCKERFILE.read_text().splitlines() if line.startswith(name + " ")]
    assert len(lines) == 1, f"one {name} expected"
    return lines[0][len(name) + 1 :]


def test_entrypoint_is_a_valid_daisi_serve_on_all_interfaces() -> None:
    entry = json.loads(_instruction("ENTRYPOINT"))
    assert entry[:3] == ["daisi", "serve", "/daisies"]
    settings = settings_of(entry[2:])
    assert (settings.server["host"], settings.server["port"]) == ("0.0.0.0", 8421)
    assert (str(settings.config.root), str(settings.config.store_dir)) == ("/daisies", "/store")
    assert _instruction("EXPOSE") == "8421"


def _docker_problem() -> str | None:
    if shutil.which("docker") is None:
        return "docker is not installed"
    done = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no reason given"])[-1]
        return f"docker has no engine here ({last})"
    return None


@pytest.mark.slow
def test_image_builds_and_serves_the_examples() -> None:
    problem = _docker_problem()
    if problem:
        pytest.skip(f"can't build the image: {problem}")
    tag = f"daisi-runtime-test:{uuid.uuid4().hex[:8]}"
    name = f"daisi-runtime-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "build", "-t", tag, str(ROOT)], check=True, timeout=1200)
    try:
        subprocess.run(
            ["docker", "run", "-d", "--name", name, "-p", "127.0.0.1::8421",
             "-v", f"{ROOT / 'examples' / 'daisies'}:/daisies:ro", tag],
            check=True, timeout=120,
        )  # fmt: skip
        port = (
            subprocess.run(
                ["docker", "port", name, "8421"], capture_output=True, text=True, check=True
            )
            .stdout.split(":")[-1]
            .strip()
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the container did not become healthy"
            time.sleep(0.5)
        assert "Add Two Numbers" in httpx.get(url + "/", timeout=30).text
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)
