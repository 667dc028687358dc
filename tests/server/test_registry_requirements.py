"""A Daisi's requirements.txt: encodings, pip's line syntax, installed or not (no server)."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest
from tests.support.daisi_folders import make_daisi

from daisi_async.server.registry import load_daisi
from daisi_async.server.registry.requirements import decode_requirements, requirement_name

MISSING = "surely-not-installed-pkg-xyz"


def test_requirements_lines_as_pip_reads_them(tmp_path: Path) -> None:
    requirements = f"""
        # a comment
        numpy>=1.0  # installed
        -r other.txt
        -c constraints.txt
        --index-url https://example.invalid/simple
        -e git+https://example.invalid/repo.git#egg=editable
        ./local/package
        https://example.invalid/wheels/bare-1.0-py3-none-any.whl

        {MISSING}[extra]==1.0 ; python_version >= "3"
        Dill
        hashed==1.0 --hash=sha256:0123456789abcdef
        continued \\
            >=2.0
        via-url @ https://example.invalid/via_url-1.0.tar.gz#sha256=00
        pywin32-only-here ; sys_platform == "no-such-platform"
    """
    spec = load_daisi(make_daisi(tmp_path, "d", {"requirements.txt": requirements, "app.py": ""}))
    assert spec.requirements == (
        "numpy>=1.0",
        "./local/package",
        "https://example.invalid/wheels/bare-1.0-py3-none-any.whl",
        f'{MISSING}[extra]==1.0 ; python_version >= "3"',
        "Dill",
        "hashed==1.0",
        "continued >=2.0",
        "via-url @ https://example.invalid/via_url-1.0.tar.gz#sha256=00",
        'pywin32-only-here ; sys_platform == "no-such-platform"',
    )
    # Bare URLs and paths have no name to check; a marker for another platform is not
    # needed here.
    assert spec.missing_requirements == (MISSING, "hashed", "continued", "via-url")
    assert spec.error is None
    assert spec.to_json()["missing_requirements"] == [MISSING, "hashed", "continued", "via-url"]


def test_missing_requirement_does_not_break_the_daisi(tmp_path: Path) -> None:
    # The module name (sklearn) is listed although the distribution is scikit-learn,
    # which is not installed either: only the import can tell; loading must not refuse.
    files = {"requirements.txt": "sklearn\nnumpy\n", "app.py": "def fit(): pass\n"}
    spec = load_daisi(make_daisi(tmp_path, "d", files))
    assert spec.error is None
    assert spec.broken is False
    assert spec.requirements == ("sklearn", "numpy")
    assert spec.missing_requirements == ("sklearn",)
    assert list(spec.endpoints) == ["fit"]


def test_requirement_names_are_compared_normalized(tmp_path: Path) -> None:
    # docstring-parser is installed as "docstring_parser"; pytest runs these tests.
    lines = "Docstring.Parser>=0.1\nDOCSTRING-parser\nPyTest\n" + f"{MISSING}\n{MISSING.upper()}\n"
    spec = load_daisi(make_daisi(tmp_path, "d", {"requirements.txt": lines, "app.py": ""}))
    assert spec.missing_requirements == (MISSING,)  # listed once, as first written


_TEXT = f"numpy>=1.0\r\n# comment é\r\n{MISSING}==1.0 ; python_version >= '3'\r\n"


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(_TEXT.encode("utf-8"), id="utf-8"),
        pytest.param(codecs.BOM_UTF8 + _TEXT.encode("utf-8"), id="utf-8-bom"),
        pytest.param(codecs.BOM_UTF16_LE + _TEXT.encode("utf-16-le"), id="utf-16-le-bom"),
        pytest.param(codecs.BOM_UTF16_BE + _TEXT.encode("utf-16-be"), id="utf-16-be-bom"),
        pytest.param(codecs.BOM_UTF32_LE + _TEXT.encode("utf-32-le"), id="utf-32-le-bom"),
        pytest.param(
            ("# -*- coding: latin-1 -*-\n" + _TEXT).encode("latin-1"), id="coding-latin-1"
        ),
    ],
)
def test_requirements_encodings(tmp_path: Path, data: bytes) -> None:
    spec = load_daisi(make_daisi(tmp_path, "d", {"requirements.txt": data, "app.py": ""}))
    assert spec.requirements == ("numpy>=1.0", f"{MISSING}==1.0 ; python_version >= '3'")
    assert spec.missing_requirements == (MISSING,)
    assert spec.error is None


def test_powershell_pip_freeze_output() -> None:
    # What ``pip freeze > requirements.txt`` writes in Windows PowerShell 5.1.
    data = "\ufeffnumpy==1.26.4\r\nDill==0.3.8\r\n".encode("utf-16-le")
    assert data.startswith(codecs.BOM_UTF16_LE)
    assert decode_requirements(data).splitlines() == ["numpy==1.26.4", "Dill==0.3.8"]


def test_undecodable_bytes_do_not_fail_the_load(tmp_path: Path) -> None:
    data = b"numpy\n\xff\xfe\xfa garbage\n"  # no BOM (FF FE is not at the start)
    spec = load_daisi(make_daisi(tmp_path, "d", {"requirements.txt": data, "app.py": ""}))
    assert spec.requirements[0] == "numpy"
    assert spec.error is None


@pytest.mark.parametrize(
    ("line", "name"),
    [
        ("scikit-learn[all]>=1.0,<2 ; python_version >= '3'", "scikit-learn"),
        ("name @ https://example.invalid/name-1.0.tar.gz", "name"),
        ("https://example.invalid/name-1.0.tar.gz", None),
        ("./path/to/pkg", None),
        ("pkg ; sys_platform == 'no-such-platform'", None),
        ("not a requirement !", None),
    ],
)
def test_requirement_name(line: str, name: str | None) -> None:
    assert requirement_name(line) == name
