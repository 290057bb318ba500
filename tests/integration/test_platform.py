"""pip's --platform, --python-version, --implementation and --abi end to end: a real HTTPS
index holding a project's x86_64 and aarch64 wheels, installed for AWS Lambda's aarch64
CPython 3.12 into --target, with and without pip's resolver; refused without --target or
--dry-run; and `lock` for that platform."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import Venv
from tests.support.cli import Run, Secinstall, dist_infos, pin, run_cli, sha256
from tests.support.index import LocalIndex
from tests.support.snapshot import snapshot
from tests.support.wheels import WheelMaker

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

LAMBDA = ("--platform", "manylinux2014_aarch64", "--python-version", "3.12",
          "--implementation", "cp", "--abi", "cp312", "--only-binary=:all:")
ARCHES = ("x86_64", "aarch64")


@pytest.fixture
def native(index: LocalIndex, make_wheel: WheelMaker) -> dict[str, Path]:
    """`native` 1.0 (requires `helper`) as a cp312 wheel for manylinux2014 x86_64 and
    aarch64, each saying which it is; `helper` 1.0, pure Python. The running interpreter
    (not CPython 3.12 on aarch64, nor on x86_64 here) fits neither `native` wheel."""
    wheels = {arch: make_wheel("native", "1.0", tag=f"cp312-cp312-manylinux2014_{arch}",
                               requires=["helper"],
                               files={"native/__init__.py": f"ARCH = {arch!r}\n"})
              for arch in ARCHES}
    wheels["helper"] = make_wheel("helper", "1.0")
    for wheel in wheels.values():
        index.add(wheel)
    return wheels


def assert_aarch64_installed(run: Run, target: Path) -> None:
    assert run.code == 0, run.err
    assert (target / "native" / "__init__.py").read_text() == "ARCH = 'aarch64'\n"
    assert dist_infos(target, "native") == ["native-1.0.dist-info"]
    assert dist_infos(target, "helper") == ["helper-1.0.dist-info"]
    wheel_file = (target / "native-1.0.dist-info" / "WHEEL").read_text()
    assert "Tag: cp312-cp312-manylinux2014_aarch64" in wheel_file
    # Python 3.12's bytecode can't be written by this interpreter: none at all.
    assert not list(target.rglob("*.pyc"))
    # The SBOM fragment says what the files were installed for, not the interpreter.
    [fragment] = (target / ".secinstall" / "sbom").glob("*.cdx.json")
    props = [(p["name"], p["value"]) for p in
             json.loads(fragment.read_text())["metadata"]["properties"]]
    assert {("secinstall:target:python-version", "3.12.0"),
            ("secinstall:target:implementation", "cp"),
            ("secinstall:target:platform", "manylinux2014_aarch64"),
            ("secinstall:target:abi", "cp312")} <= set(props), props


def test_pinned_install_for_lambda(secinstall: Secinstall, native: dict[str, Path],
                                   venv: Venv, tmp_path: Path) -> None:
    """No resolver: the pinned wheel is chosen by the tags for the options."""
    both = " ".join(f"--hash=sha256:{sha256(native[arch])}" for arch in ARCHES)
    reqs = secinstall.requirements(f"native==1.0 {both}", pin(native["helper"]))
    target = tmp_path / "package"
    run = secinstall("--python", venv.python, "--target", target, *LAMBDA, "-r", reqs, "-v")
    assert_aarch64_installed(run, target)
    assert "no bytecode compiled" in run.out


def test_resolved_install_for_lambda(secinstall: Secinstall, native: dict[str, Path],
                                     venv: Venv, tmp_path: Path) -> None:
    """pip's resolver gets the same options, and finds the aarch64 wheel."""
    target = tmp_path / "package"
    run = secinstall("--python", venv.python, "--target", target, *LAMBDA, "native")
    assert_aarch64_installed(run, target)


def test_without_options_neither_wheel_fits(secinstall: Secinstall, native: dict[str, Path],
                                            venv: Venv, tmp_path: Path) -> None:
    run = secinstall("--python", venv.python, "--target", tmp_path / "package", "native")
    assert run.code != 0
    assert not (tmp_path / "package" / "native").exists()


@pytest.mark.parametrize("where", [(), ("--prefix", "PREFIX")], ids=["environment", "prefix"])
def test_refused_without_target_or_dry_run(secinstall: Secinstall, native: dict[str, Path],
                                           venv: Venv, tmp_path: Path,
                                           where: tuple[str, ...]) -> None:
    before = snapshot(tmp_path, ignore=lambda p: p.startswith("cache"))
    args = [a.replace("PREFIX", str(tmp_path / "prefix")) for a in where]
    run = secinstall("--python", venv.python, *args, *LAMBDA, "native")
    assert run.code == 1
    assert ("Can not use any platform or abi specific options unless installing via "
            "'--target' or using '--dry-run'") in run.err
    assert snapshot(tmp_path, ignore=lambda p: p.startswith("cache")) == before


def test_dry_run_accepted(secinstall: Secinstall, native: dict[str, Path], venv: Venv,
                          tmp_path: Path) -> None:
    before = snapshot(venv.path)
    run = secinstall("--python", venv.python, "--dry-run", *LAMBDA, "native")
    assert run.code == 0, run.err
    assert "Would install: native 1.0, helper 1.0" in run.out
    assert snapshot(venv.path) == before


def test_lock_for_lambda(index: LocalIndex, ca_file: Path, native: dict[str, Path],
                         venv: Venv, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    """`lock` writes no environment: the options need no --target."""
    lock = tmp_path / "pylock.toml"
    run = run_cli(index, ca_file, tmp_path, capsys,
                  ["lock", "--python", str(venv.python), *LAMBDA, "native", "-o", str(lock)])
    assert run.code == 0, run.err
    data = tomllib.loads(lock.read_text(encoding="utf-8"))
    assert data["requires-python"] == ">=3.12"
    wheels = {p["name"]: [w["name"] for w in p["wheels"]] for p in data["packages"]}
    assert wheels == {"native": [native["aarch64"].name], "helper": [native["helper"].name]}


def test_lock_file_input_refused(secinstall: Secinstall, native: dict[str, Path],
                                 venv: Venv, tmp_path: Path) -> None:
    """As in pip: a lock's selection is for the interpreter, not for these options."""
    lock = tmp_path / "pylock.toml"
    lock.write_text('lock-version = "1.0"\ncreated-by = "test"\n', encoding="utf-8")
    run = secinstall("--python", venv.python, "--target", tmp_path / "package", *LAMBDA,
                     "-r", lock)
    assert run.code == 1
    assert "don't apply to it" in run.err
    assert not (tmp_path / "package").exists()
