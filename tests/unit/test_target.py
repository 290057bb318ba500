"""Tests of secinstall.target: the interpreter, install scheme and tags of the target."""

from __future__ import annotations

import locale
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import default_environment
from packaging.tags import sys_tags
from tests.conftest import Venv

from secinstall.errors import TargetError
from secinstall.target import externally_managed_keys, externally_managed_text, resolve_target


def test_running_interpreter() -> None:
    target = resolve_target()
    assert target.kind == "environment"
    assert target.python == Path(sys.executable).absolute()
    assert target.is_current is True
    assert target.version == tuple(sys.version_info[:3])
    assert target.root == Path(sys.prefix)
    assert target.scheme["purelib"] == sysconfig.get_paths()["purelib"]
    assert target.scheme["scripts"] == sysconfig.get_paths()["scripts"]
    assert target.tags == tuple(str(t) for t in sys_tags())
    assert target.markers == default_environment()
    assert target.cache_tag == sys.implementation.cache_tag
    assert target.state_dir == Path(sys.prefix) / ".secinstall"
    assert Path(target.scheme["purelib"]) in target.site_dirs


@pytest.mark.parametrize("spec", ["python", "dir"], ids=["interpreter", "environment-dir"])
def test_virtual_environment(venv: Venv, spec: str) -> None:
    target = resolve_target(str(venv.python if spec == "python" else venv.path))
    assert target.kind == "environment"
    assert target.python == venv.python
    assert target.is_current is False
    assert target.root == venv.path
    assert Path(target.scheme["purelib"]) == venv.purelib
    assert Path(target.scheme["scripts"]) == venv.bin
    assert target.site_dirs[0] == venv.purelib
    assert target.version == tuple(sys.version_info[:3])  # the venv is of this interpreter
    assert target.tags[0] == str(next(iter(sys_tags())))


def test_interpreter_found_on_path(venv: Venv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(venv.bin))
    assert resolve_target("python").python == venv.python


def test_target_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    target = resolve_target(target_dir="vendored")
    root = tmp_path / "vendored"
    assert target.kind == "target"
    assert target.root == root  # made absolute
    # Headers as pip puts them with --target (each distribution's under its name).
    headers = (root / "include" / "site" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
               if sys.prefix != sys.base_prefix else root / "include" / "python")
    assert target.scheme == {"purelib": str(root), "platlib": str(root),
                             "scripts": str(root / "bin"), "data": str(root),
                             "headers": str(headers)}
    assert target.site_dirs == (root,)
    assert target.state_dir == root / ".secinstall"


def test_prefix(tmp_path: Path, venv: Venv) -> None:
    prefix = tmp_path / "prefix"
    target = resolve_target(str(venv.python), prefix=str(prefix))
    assert target.kind == "prefix"
    assert target.root == prefix
    expected = sysconfig.get_paths("posix_prefix", vars={
        "base": str(prefix), "platbase": str(prefix),
        "installed_base": str(prefix), "installed_platbase": str(prefix)})
    for key in ("purelib", "platlib", "scripts", "data"):
        assert target.scheme[key] == expected[key]
        assert Path(target.scheme[key]).is_relative_to(prefix)
    assert target.python == venv.python


def test_prefix_for_the_running_interpreter(tmp_path: Path) -> None:
    path, argv = list(sys.path), list(sys.argv)
    target = resolve_target(prefix=str(tmp_path / "p"))
    assert target.is_current is True
    assert Path(target.scheme["purelib"]).is_relative_to(tmp_path / "p")
    # The probe ran in this process: it must leave sys.path and sys.argv as they were.
    assert (sys.path, sys.argv) == (path, argv)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"python": "/nonexistent/bin/python"}, "--python /nonexistent/bin/python: no such file"),
        ({"python": "no-such-python-command-here"}, "no such file or command"),
        ({"target_dir": "t", "prefix": "p"}, "--target and --prefix can't be used together"),
    ],
    ids=["missing-file", "missing-command", "target-and-prefix"],
)
def test_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TargetError, match=message):
        resolve_target(**kwargs)


def test_directory_without_interpreter(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match=f"--python {tmp_path}: no interpreter found"):
        resolve_target(str(tmp_path))


def test_interpreter_that_fails(tmp_path: Path) -> None:
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'broken install' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(TargetError) as info:
        resolve_target(str(fake))
    assert info.value.message == (
        f"the target interpreter {fake} failed to describe itself: broken install")


def test_interpreter_that_is_not_python(tmp_path: Path) -> None:
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'hello'\n")
    fake.chmod(0o755)
    with pytest.raises(TargetError, match=f"the target interpreter {fake} gave unreadable output"):
        resolve_target(str(fake))


def test_file_that_is_not_executable(tmp_path: Path) -> None:
    fake = tmp_path / "python"
    fake.write_text("not a program\n")
    with pytest.raises(TargetError, match=f"can't run the target interpreter {fake}"):
        resolve_target(str(fake))


# -- PEP 668: the EXTERNALLY-MANAGED marker's message, as pip reads it ------------------------


@pytest.mark.parametrize(
    ("lang", "keys"),
    [
        (None, ["Error"]),
        ("C", ["Error-C", "Error"]),
        ("de_DE", ["Error-de_DE", "Error-de", "Error"]),
        ("pt-BR", ["Error-pt-BR", "Error-pt", "Error"]),
    ],
)
def test_externally_managed_keys_in_pips_order(lang: str | None, keys: list[str]) -> None:
    assert externally_managed_keys(lang) == keys


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(b"[externally-managed]\nError=Use apt.\n\tOr a venv.\n", id="error"),
        pytest.param(b"[externally-managed]\nError =\n  first\n\n  after a blank line\n",
                     id="starts-on-the-next-line"),
        pytest.param(b"[externally-managed]\nerror-en_US = in English\nError = default\n",
                     id="localized-key-case-insensitive"),
        pytest.param(b"[externally-managed]\nError-en = in English\nError = default\n",
                     id="localized-language"),
        pytest.param(b"[externally-managed]\nError = 100% %(managed)s\n", id="no-interpolation"),
        pytest.param(b"[externally-managed]\nOther = x\n", id="no-error-key"),
        pytest.param(b"[other]\nError = x\n", id="no-section"),
        pytest.param(b"Error = x\n", id="no-section-header"),
        pytest.param(b"[externally-managed]\nError = \xff\xfe\n", id="not-utf-8"),
        pytest.param(b"", id="empty"),
    ],
)
@pytest.mark.parametrize("messages_locale", [None, "C.UTF-8"])
def test_externally_managed_text_is_what_pip_shows(
    tmp_path: Path, text: bytes, messages_locale: str | None
) -> None:
    from pip._internal.exceptions import ExternallyManagedEnvironment

    marker = tmp_path / "EXTERNALLY-MANAGED"
    marker.write_bytes(text)
    saved = locale.setlocale(locale.LC_MESSAGES)
    try:
        if messages_locale is not None:
            try:
                locale.setlocale(locale.LC_MESSAGES, messages_locale)
            except locale.Error:
                pytest.skip(f"no {messages_locale} locale here")
        theirs = str(ExternallyManagedEnvironment.from_config(marker).context)
        ours = externally_managed_text(marker, Path(sys.prefix))
    finally:
        locale.setlocale(locale.LC_MESSAGES, saved)
    # pip's default text ends with a newline; what the CLI shows is stripped either way.
    assert ours.strip() == theirs.strip()


def test_a_home_that_cant_be_found_leaves_the_path_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As pip (os.path.expanduser): `~nosuchuser/t` is a relative path, not a traceback.
    monkeypatch.chdir(tmp_path)
    assert resolve_target(target_dir="~nosuchuser/t").root == tmp_path / "~nosuchuser" / "t"
    assert resolve_target(prefix="~nosuchuser/p").root == tmp_path / "~nosuchuser" / "p"
    with pytest.raises(TargetError, match="--python ~nosuchuser/venv: no such file"):
        resolve_target("~nosuchuser/venv")
