"""Writing Daisi folders for tests."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path


def make_daisi(root: Path, folder: str, files: Mapping[str, str | bytes]) -> Path:
    """Write a Daisi folder under ``root`` from ``{relative path: text or bytes}``.

    Text is dedented and written as UTF-8; bytes are written as they are.
    """
    path = root / folder
    path.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        file = path / name
        file.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            file.write_bytes(content)
        else:
            file.write_text(textwrap.dedent(content), encoding="utf-8")
    return path
