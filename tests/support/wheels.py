"""Small wheels written directly (a wheel is a zip file), for offline installs in tests;
and the session fixtures of the tests that build environments."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import pytest


def write_wheel(folder: Path, name: str, version: str, *, code: str | None = None) -> Path:
    """Write ``{name}-{version}-py3-none-any.whl`` into ``folder``: a package ``name``
    whose ``__init__.py`` is ``code`` (default: ``VERSION = "{version}"``)."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": code if code is not None else f'VERSION = "{version}"\n',
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for path, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
    return wheel


def toy_wheels(folder: Path) -> Path:
    """A find-links folder with ``toypkg`` 1.0 and 2.0 (``toypkg.VERSION`` says which)."""
    for version in ("1.0", "2.0"):
        write_wheel(folder, "toypkg", version)
    return folder


@pytest.fixture(scope="session")
def toy_links(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A find-links folder with ``toypkg`` 1.0 and 2.0, for the whole session."""
    return toy_wheels(tmp_path_factory.mktemp("toy-links"))


@pytest.fixture(scope="session")
def uv_cache(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment variables for runtimes that build environments: one uv cache for the
    whole session (in its temporary folder), so each wheel is unpacked once."""
    return {"UV_CACHE_DIR": str(tmp_path_factory.mktemp("uv-cache"))}
