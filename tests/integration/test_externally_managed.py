"""PEP 668: an install into an externally managed environment (a Python the operating system
or another distributor manages) is refused, as pip refuses it, unless
--break-system-packages; virtual environments, --target and --prefix are not concerned.

The externally managed Python is a real interpreter outside any virtual environment, made
of a copy of the base interpreter and symlinks to its standard library
(tests/support/system_python.py), with a real EXTERNALLY-MANAGED file."""

from __future__ import annotations

import json
import os
import subprocess
import sysconfig
from pathlib import Path

import pytest

import secinstall as secinstall_module
from secinstall.target import resolve_target
from tests.conftest import make_venv, run_in
from tests.support.cli import Secinstall, run_cli
from tests.support.snapshot import snapshot
from tests.support.system_python import (
    SystemPython,
    assert_refused,
    fragment_weakenings,
    imports_demo,
    set_pip_switch,
)
from tests.support.wheels import WheelMaker

WEAKENED = "verification weakened: installing into an externally managed environment"


@pytest.fixture
def demo(secinstall: Secinstall, make_wheel: WheelMaker) -> Path:
    wheel = make_wheel("demo", "1.0")
    secinstall.index.add(wheel)
    return wheel


def test_install_into_an_externally_managed_environment_is_refused(
    secinstall: Secinstall, managed: SystemPython, demo: Path
) -> None:
    before = snapshot(managed.prefix)

    run = secinstall("--python", managed.python, "demo")

    assert_refused(run.code, run.err, managed)
    assert snapshot(managed.prefix) == before
    assert secinstall.index.requests == []  # refused before anything was asked for
    assert imports_demo(managed.python).endswith("No module named 'demo'")


@pytest.mark.parametrize("value", ["0", "no"])
def test_break_system_packages_set_false_still_refuses(
    secinstall: Secinstall, managed: SystemPython, demo: Path, monkeypatch: pytest.MonkeyPatch,
    value: str,
) -> None:
    monkeypatch.setenv("PIP_BREAK_SYSTEM_PACKAGES", value)
    before = snapshot(managed.prefix)

    run = secinstall("--python", managed.python, "demo")
    assert_refused(run.code, run.err, managed)
    assert snapshot(managed.prefix) == before


def test_break_system_packages_installs_and_is_a_reported_weakening(
    secinstall: Secinstall, managed: SystemPython, demo: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"

    run = secinstall("--python", managed.python, "--break-system-packages", "demo",
                     "--report", report)

    assert run.code == 0, run.err
    assert "Installed: demo 1.0" in run.out
    assert (managed.purelib / "demo-1.0.dist-info").is_dir()
    assert imports_demo(managed.python) == "1.0"
    weakening = ("installing into an externally managed environment despite its PEP 668 "
                 f"marker {managed.marker} (--break-system-packages)")
    assert f"warning: verification weakened: {weakening}" in run.err
    assert fragment_weakenings(managed.prefix) == [weakening]
    assert json.loads(report.read_text())["secinstall"]["weakened"] == [weakening]
    assert managed.marker.is_file()  # the environment is still the distributor's


@pytest.mark.parametrize("where", ["variable", "config-file"])
def test_break_system_packages_from_pips_configuration(
    secinstall: Secinstall, managed: SystemPython, demo: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, where: str,
) -> None:
    set_pip_switch(monkeypatch, tmp_path, "break-system-packages", where)

    run = secinstall("--python", managed.python, "demo")

    assert run.code == 0, run.err
    assert imports_demo(managed.python) == "1.0"
    assert WEAKENED in run.err
    assert len(fragment_weakenings(managed.prefix)) == 1


def test_break_system_packages_where_nothing_is_managed_is_no_weakening(
    secinstall: Secinstall, system_python: SystemPython, demo: Path
) -> None:
    run = secinstall("--python", system_python.python, "--break-system-packages", "demo")

    assert run.code == 0, run.err
    assert imports_demo(system_python.python) == "1.0"
    assert "weakened" not in run.err
    assert fragment_weakenings(system_python.prefix) == []


def test_a_virtual_environment_of_the_managed_python_is_not_refused(
    secinstall: Secinstall, managed: SystemPython, demo: Path, tmp_path: Path
) -> None:
    venv = make_venv(tmp_path / "venv", managed.python)
    before = snapshot(managed.prefix)

    run = secinstall("--python", venv.path, "demo")

    assert run.code == 0, run.err
    assert run_in(venv, "import demo; print(demo.__version__)").stdout == "1.0\n"
    assert "weakened" not in run.err
    assert snapshot(managed.prefix) == before  # what the venv shares was left alone


@pytest.mark.parametrize("option", ["--target", "--prefix"])
def test_target_and_prefix_are_not_refused(
    secinstall: Secinstall, managed: SystemPython, demo: Path, tmp_path: Path, option: str
) -> None:
    elsewhere = tmp_path / "elsewhere"
    before = snapshot(managed.prefix)

    run = secinstall("--python", managed.python, option, elsewhere, "demo")

    assert run.code == 0, run.err
    assert [p.name for p in elsewhere.rglob("demo-1.0.dist-info")] == ["demo-1.0.dist-info"]
    assert "weakened" not in run.err
    assert snapshot(managed.prefix) == before


def test_dry_run_is_refused_but_dry_run_with_a_report_is_not_as_in_pip(
    secinstall: Secinstall, managed: SystemPython, demo: Path
) -> None:
    before = snapshot(managed.prefix)

    refused = secinstall("--python", managed.python, "--dry-run", "demo")
    assert_refused(refused.code, refused.err, managed)
    run = secinstall("--python", managed.python, "--dry-run", "--report", "-", "demo")

    assert run.code == 0, run.err
    assert [i["metadata"]["name"] for i in json.loads(run.out)["install"]] == ["demo"]
    assert snapshot(managed.prefix) == before


def test_lock_for_the_managed_python_is_not_refused(
    secinstall: Secinstall, managed: SystemPython, demo: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    lock = tmp_path / "pylock.toml"
    before = snapshot(managed.prefix)

    run = run_cli(secinstall.index, secinstall.ca_file, tmp_path, capsys,
                  ["lock", "--python", str(managed.python), "demo", "-o", str(lock)])

    assert run.code == 0, run.err
    assert 'name = "demo"' in lock.read_text(encoding="utf-8")
    assert snapshot(managed.prefix) == before


def test_secinstall_run_by_the_managed_python_refuses_its_own_environment(
    secinstall: Secinstall, managed: SystemPython, demo: Path, tmp_path: Path
) -> None:
    # No --python: the target is the interpreter running secinstall, described in-process.
    here = [str(Path(secinstall_module.__file__).parents[1]), sysconfig.get_path("purelib")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(here)}
    before = snapshot(managed.prefix)

    done = subprocess.run(
        [str(managed.python), "-m", "secinstall", "install", "demo",
         "--index-url", secinstall.index.url, "--cert", str(secinstall.ca_file),
         "--cache-dir", str(tmp_path / "cache")],
        capture_output=True, text=True, env=env, check=False)

    assert_refused(done.returncode, done.stderr, managed)
    assert snapshot(managed.prefix) == before
    assert secinstall.index.requests == []


def test_the_target_names_the_marker_only_where_it_governs(
    managed: SystemPython, tmp_path: Path
) -> None:
    assert resolve_target(str(managed.python)).externally_managed == managed.marker
    assert resolve_target(str(managed.python),
                          target_dir=str(tmp_path / "t")).externally_managed is None
    assert resolve_target(str(managed.python),
                          prefix=str(tmp_path / "p")).externally_managed is None
    venv = make_venv(tmp_path / "venv", managed.python)
    assert resolve_target(str(venv.python)).externally_managed is None
    assert resolve_target().externally_managed is None  # the tests run in a venv


# -- pip's --require-virtualenv: no install outside a virtual environment ------------------


@pytest.mark.parametrize("where", ["flag", "variable", "config-file"])
def test_require_virtualenv_refuses_an_interpreter_outside_one(
    secinstall: Secinstall, system_python: SystemPython, demo: Path,
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, where: str,
) -> None:
    if where != "flag":
        set_pip_switch(monkeypatch, tmp_path, "require-virtualenv", where)
    flag = ("--require-virtualenv",) if where == "flag" else ()
    before = snapshot(system_python.prefix)

    run = secinstall("--python", system_python.python, *flag, "demo")

    assert run.code == 3, run.err  # pip's exit code for it
    assert "error: Could not find an activated virtualenv (required)" in run.err
    assert str(system_python.python) in run.err
    assert snapshot(system_python.prefix) == before
    # A virtual environment of the same Python is fine, as in pip.
    venv = make_venv(tmp_path / "venv", system_python.python)
    assert secinstall("--python", venv.python, *flag, "demo").code == 0
