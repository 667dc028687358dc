"""The rules of Daisies' environments, without a server: normalized requirements, the key
that names an environment, masked credentials, and the ``daisi serve`` options."""

from __future__ import annotations

from pathlib import Path

import pytest

from daisi_async.cli import main
from daisi_async.cli.serve import settings_of
from daisi_async.server.envs import (
    EnvOptions,
    environment_key,
    normalize_text,
    read_requirements,
    redact,
)


def write(folder: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return folder


def key(folder: Path, options: EnvOptions | None = None) -> str:
    requirements = read_requirements(folder)
    assert requirements is not None and requirements.error is None, requirements
    return environment_key(requirements, options=options or EnvOptions(), folder=folder)


def test_encoding_comments_spacing_case_and_order_do_not_change_the_key(tmp_path: Path) -> None:
    plain = write(tmp_path / "a", {"requirements.txt": "numpy>=1.0\npandas\n"})
    utf16 = write(
        tmp_path / "b",
        {
            "requirements.txt": b"\xff\xfe"
            + "Pandas\r\n# fast\r\nNumPy >= 1.0\r\n".encode("utf-16-le")
        },
    )
    bom8 = write(
        tmp_path / "c", {"requirements.txt": b"\xef\xbb\xbfpandas \\\n  # x\nnumpy>=1.0  # y\n"}
    )
    assert key(plain) == key(utf16) == key(bom8)
    other = write(tmp_path / "d", {"requirements.txt": "numpy>=1.1\npandas\n"})
    assert key(other) != key(plain)


def test_option_lines_keep_their_order_and_count() -> None:
    first = normalize_text(
        "--extra-index-url https://a.example\n--extra-index-url https://b.example\nx"
    )
    second = normalize_text(
        "--extra-index-url https://b.example\n--extra-index-url https://a.example\nx"
    )
    assert first.options == (
        "--extra-index-url https://a.example",
        "--extra-index-url https://b.example",
    )
    assert first != second  # the first index wins: a different environment
    assert normalize_text("--pre\n# nothing else\n").installs_anything is False


def test_includes_are_inlined_relative_to_the_file_naming_them(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "daisi",
        {
            "requirements.txt": "-r reqs/base.txt\n--constraint=reqs/pins.txt\nrich\n",
            "reqs/base.txt": "-r ../common.txt\nnumpy\n",
            "common.txt": "httpx\n",
            "reqs/pins.txt": "numpy<2\n",
        },
    )
    requirements = read_requirements(folder)
    assert requirements is not None
    assert requirements.error is None
    assert requirements.lines == ("httpx", "numpy", "rich")
    assert requirements.constraints == ("numpy<2",)
    assert requirements.text() == "httpx\nnumpy\nrich\n"
    inline = write(tmp_path / "inline", {"requirements.txt": "httpx\nnumpy\nrich\n-c pins.txt\n"})
    write(inline, {"pins.txt": "numpy <2\n"})
    assert key(folder) == key(inline)


def test_a_missing_or_endless_include_is_an_error(tmp_path: Path) -> None:
    missing = read_requirements(write(tmp_path / "a", {"requirements.txt": "x\n-r nope.txt\n"}))
    assert missing is not None and missing.error is not None
    assert "-r nope.txt" in missing.error and "No such file" in missing.error
    loop = read_requirements(write(tmp_path / "b", {"requirements.txt": "-r requirements.txt\n"}))
    assert loop is not None and loop.error is not None and "deeper than" in loop.error
    assert read_requirements(tmp_path / "none") is None


def test_installer_options_that_change_the_result_change_the_key(tmp_path: Path) -> None:
    folder = write(tmp_path / "a", {"requirements.txt": "toypkg==1.0\n"})
    base = key(folder)
    assert key(folder, EnvOptions(offline=True)) == base
    assert key(folder, EnvOptions(shared=False, max_builds=5)) == base
    assert key(folder, EnvOptions(index_url="https://mirror.example/simple")) != base
    assert key(folder, EnvOptions(find_links=("/srv/wheels",))) != base
    # The same requirements in another folder share the environment...
    assert key(write(tmp_path / "b", {"requirements.txt": "toypkg==1.0\n"})) == base


def test_a_local_path_makes_the_folder_part_of_the_key(tmp_path: Path) -> None:
    one = write(tmp_path / "one", {"requirements.txt": "-e .\n"})
    two = write(tmp_path / "two", {"requirements.txt": "-e .\n"})
    assert key(one) != key(two)
    three = write(tmp_path / "three", {"requirements.txt": "./lib\n"})
    four = write(tmp_path / "four", {"requirements.txt": "./lib\n"})
    assert key(three) != key(four)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET https://me:s3cret@pkgs.example/simple/x/", "GET https://****@pkgs.example/simple/x/"),
        ("--index-url http://token@host:8080/simple", "--index-url http://****@host:8080/simple"),
        (
            "no credentials: https://pkgs.example/simple",
            "no credentials: https://pkgs.example/simple",
        ),
        ("mail me@example.com", "mail me@example.com"),
    ],
)
def test_credentials_in_urls_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_find_links_paths_are_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "wheels").mkdir()
    monkeypatch.chdir(tmp_path)
    envs = settings_of(
        [".", "--find-links", "wheels", "--find-links", "https://pkgs.example/links/",
         "--index-url", "https://mirror.example/simple", "--offline", "--shared-env"]
    ).config.envs  # fmt: skip
    assert envs.find_links == (str(tmp_path / "wheels"), "https://pkgs.example/links/")
    assert (envs.index_url, envs.offline, envs.shared) == (
        "https://mirror.example/simple",
        True,
        True,
    )


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--find-links", "no-such-folder"], "no such file or folder: 'no-such-folder'"),
        (["--index-url", "mirror.example/simple"], "not an http(s) or file URL"),
    ],
)
def test_bad_environment_options_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], option: list[str], message: str
) -> None:
    store = tmp_path / "store"
    assert main(["serve", str(tmp_path), "--store", str(store), *option]) == 2
    assert message in capsys.readouterr().err
    assert not store.exists()  # nothing was started or created
    # The same command with a good value parses.
    assert settings_of([str(tmp_path), "--offline"]).config.envs.offline is True
