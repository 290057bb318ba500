"""`secinstall uninstall`: pip's semantics (names, -r, not installed skipped, no RECORD
refused, PEP 668), one transaction for all the names, an SBOM fragment that records the
removal. Real virtual environments, real wheels installed by secinstall itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import secinstall as secinstall_module
from tests.conftest import Venv, run_in
from tests.support.cli import Run, Secinstall, pin, run_cli
from tests.support.files import denied_prefix
from tests.support.index import LocalIndex
from tests.support.snapshot import snapshot
from tests.support.system_python import SystemPython, imports_demo
from tests.support.wheels import WheelMaker

APP_FILES: dict[str, str | bytes] = {
    "app/__init__.py": 'import lib\n__version__ = "1.0"\n',
    "app/cli.py": "def main():\n    print('hello')\n",
}


@pytest.fixture
def wheels(index: LocalIndex, make_wheel: WheelMaker) -> dict[str, Path]:
    """`app` 1.0 (requires lib, has the console script `app-hello`) and lib 1.0."""
    made = {"app": make_wheel("app", "1.0", files=APP_FILES, requires=["lib>=1"],
                              console_scripts={"app-hello": "app.cli:main"}),
            "lib": make_wheel("lib", "1.0")}
    for wheel in made.values():
        index.add(wheel)
    return made


@pytest.fixture
def both(secinstall: Secinstall, venv: Venv, wheels: dict[str, Path]) -> Venv:
    """`venv` with app and lib installed by secinstall."""
    run = secinstall("--python", venv.path, *secinstall.pinned(wheels["app"], wheels["lib"]))
    assert run.code == 0, run.err
    return venv


def uninstall(secinstall: Secinstall, *args: str | Path) -> Run:
    return run_cli(secinstall.index, secinstall.ca_file, secinstall.tmp, secinstall.capsys,
                   ["uninstall", *map(str, args)], local=False)


def outside_state(rel: str) -> bool:
    """Leaves secinstall's own state (its lock and SBOM fragments) out of a snapshot."""
    return rel == ".secinstall"


def fragments(root: Path) -> list[dict[str, Any]]:
    """The SBOM fragments under `root`, oldest first."""
    return [json.loads(p.read_text(encoding="utf-8"))
            for p in sorted((root / ".secinstall" / "sbom").glob("*.cdx.json"))]


def props(document: dict[str, Any], name: str) -> list[str]:
    return [p["value"] for p in document["metadata"]["properties"] if p["name"] == name]


def sbom_components(secinstall: Secinstall, venv: Venv) -> dict[str, dict[str, str]]:
    """`secinstall sbom`'s components: name → their properties."""
    run = run_cli(secinstall.index, secinstall.ca_file, secinstall.tmp, secinstall.capsys,
                  ["sbom", "--python", str(venv.python)], local=False)
    assert run.code == 0, run.err
    return {c["name"]: {p["name"]: p["value"] for p in c.get("properties", [])}
            for c in json.loads(run.out)["components"]}


def test_uninstall_removes_every_file_and_records_the_removal(
    secinstall: Secinstall, venv: Venv, wheels: dict[str, Path]
) -> None:
    assert secinstall("--python", venv.path, *secinstall.pinned(wheels["lib"])).code == 0
    before = snapshot(venv.path, outside_state)
    assert secinstall("--python", venv.path, "--no-deps",
                      *secinstall.pinned(wheels["app"])).code == 0
    assert (venv.bin / "app-hello").is_file()
    assert run_in(venv, "import app").returncode == 0  # its bytecode is there too

    run = uninstall(secinstall, "--python", venv.path, "-v", "app")

    assert run.code == 0, run.err
    assert "Uninstalled: app 1.0" in run.out
    assert "app 1.0: " in run.out and " file(s) removed" in run.out
    assert not (venv.bin / "app-hello").exists()
    assert not (venv.purelib / "app").exists()
    assert not (venv.purelib / "app-1.0.dist-info").exists()
    assert snapshot(venv.path, outside_state) == before  # lib, and nothing else, stays
    assert run_in(venv, "import lib").returncode == 0
    assert not list((venv.path / ".secinstall").glob("txn-*"))
    *_, last = fragments(venv.path)
    assert last.get("components", []) == []
    assert props(last, "secinstall:removed") == ["app==1.0"]
    assert props(last, "secinstall:target:root") == [str(venv.path)]
    assert set(sbom_components(secinstall, venv)) == {"lib"}

    # Installed again: the environment's SBOM has it, from the newest fragment.
    assert secinstall("--python", venv.path, "--no-deps",
                      *secinstall.pinned(wheels["app"])).code == 0
    app = sbom_components(secinstall, venv)["app"]
    assert app["secinstall:verified"] == "true"
    assert app["secinstall:fragment"] == sorted(
        (venv.path / ".secinstall" / "sbom").glob("*.cdx.json"))[-1].name


def test_a_removal_ends_the_record_of_an_earlier_install(
    secinstall: Secinstall, both: Venv
) -> None:
    """Files put back by another means than secinstall (a backup restored, here) are not
    said to be verified by the fragment of the install that came before the removal."""
    site = both.purelib
    kept = {p: p.read_bytes() for p in [*site.glob("lib/**/*"), *site.glob("lib-1.0*/*")]
            if p.is_file()}
    assert uninstall(secinstall, "--python", both.path, "lib").code == 0
    for path, data in kept.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    lib = sbom_components(secinstall, both)["lib"]

    assert lib["secinstall:verified"] == "false"


def test_several_names_one_not_installed_is_skipped_as_pip_does(
    secinstall: Secinstall, both: Venv
) -> None:
    run = uninstall(secinstall, "--python", both.path, "-y", "App==1.0", "nothere", "LIB>=1")

    assert run.code == 0, run.err
    assert "warning: Skipping nothere as it is not installed." in run.err
    assert "Uninstalled: app 1.0, lib 1.0" in run.out
    assert not list(both.purelib.glob("*.dist-info"))
    [last] = fragments(both.path)[-1:]
    assert props(last, "secinstall:removed") == ["app==1.0", "lib==1.0"]


def test_only_names_not_installed_change_nothing(secinstall: Secinstall, both: Venv) -> None:
    before = snapshot(both.path)

    run = uninstall(secinstall, "--python", both.path, "nothere")

    assert run.code == 0, run.err
    assert "Skipping nothere as it is not installed." in run.err
    assert "Uninstalled" not in run.out
    assert snapshot(both.path) == before  # no fragment either


def test_names_from_requirements_files(
    secinstall: Secinstall, both: Venv, wheels: dict[str, Path]
) -> None:
    first = secinstall.requirements("# what the project needs", pin(wheels["app"]))
    second = secinstall.requirements("lib>=1 ; python_version >= '3'")

    run = uninstall(secinstall, "--python", both.path, "-r", first, "--requirement", second)

    assert run.code == 0, run.err
    assert "Uninstalled: app 1.0, lib 1.0" in run.out
    assert not list(both.purelib.glob("*.dist-info"))


def test_no_names_is_an_error(secinstall: Secinstall, venv: Venv) -> None:
    run = uninstall(secinstall, "--python", venv.path)

    assert run.code == 1
    assert "nothing to uninstall" in run.err


def test_a_failure_in_the_second_distribution_restores_the_first(
    secinstall: Secinstall, both: Venv, tmp_path: Path
) -> None:
    """lib's package directory can't be written (mode 0o555, a real refusal: secinstall
    runs without root's way past file modes), so lib's files can't be removed, after
    app's were: app is put back byte for byte."""
    prefix = denied_prefix(tmp_path)
    (both.purelib / "lib").chmod(0o555)
    before = snapshot(both.path)
    env = {**os.environ, "PYTHONPATH": str(Path(secinstall_module.__file__).parents[1])}

    done = subprocess.run([*prefix, sys.executable, "-m", "secinstall", "uninstall",
                           "--python", str(both.python), "app", "lib"],
                          capture_output=True, text=True, env=env, check=False)

    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"can't move {both.purelib / 'lib'}" in done.stderr
    assert "Permission denied" in done.stderr
    assert "every change was rolled back, nothing was uninstalled" in done.stderr
    assert snapshot(both.path) == before
    assert run_in(both, "import app").returncode == 0


def test_a_distribution_without_record_is_refused_before_anything_is_removed(
    secinstall: Secinstall, both: Venv
) -> None:
    (both.purelib / "lib-1.0.dist-info" / "RECORD").unlink()
    before = snapshot(both.path)

    run = uninstall(secinstall, "--python", both.path, "app", "lib")

    assert run.code == 1
    assert "Cannot uninstall lib 1.0: no RECORD file was found in " in run.err
    assert "(its INSTALLER says secinstall)" in run.err
    assert "Nothing was uninstalled." in run.err
    assert snapshot(both.path) == before


def test_files_named_outside_the_environment_are_left_alone(
    secinstall: Secinstall, both: Venv, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("not lib's\n", encoding="utf-8")
    record = both.purelib / "lib-1.0.dist-info" / "RECORD"
    with record.open("a", encoding="utf-8") as f:
        f.write(f"{os.path.relpath(outside, both.purelib)},,\n")

    run = uninstall(secinstall, "--python", both.path, "lib")

    assert run.code == 0, run.err
    assert f"lib: RECORD names {outside}, outside the environment; left alone" in run.err
    assert outside.read_text(encoding="utf-8") == "not lib's\n"
    assert not (both.purelib / "lib").exists()


def test_require_virtualenv_refuses_a_python_outside_one(
    secinstall: Secinstall, system_python: SystemPython
) -> None:
    run = uninstall(secinstall, "--python", system_python.python, "--require-virtualenv",
                    "demo")

    assert run.code == 3
    assert "Could not find an activated virtualenv (required)" in run.err
    assert "Nothing was uninstalled." in run.err


def test_externally_managed_is_refused_unless_break_system_packages(
    secinstall: Secinstall, managed: SystemPython, make_wheel: WheelMaker
) -> None:
    secinstall.index.add(make_wheel("demo", "1.0"))
    assert secinstall("--python", managed.python, "--break-system-packages", "demo").code == 0
    before = snapshot(managed.prefix)

    refused = uninstall(secinstall, "--python", managed.python, "demo")

    assert refused.code == 1
    assert "externally managed environment (PEP 668)" in refused.err
    assert str(managed.marker) in refused.err
    assert "Nothing was uninstalled." in refused.err
    assert snapshot(managed.prefix) == before

    run = uninstall(secinstall, "--python", managed.python, "--break-system-packages", "demo")

    assert run.code == 0, run.err
    weakening = ("uninstalling from an externally managed environment despite its PEP 668 "
                 f"marker {managed.marker} (--break-system-packages)")
    assert f"warning: verification weakened: {weakening}" in run.err
    assert imports_demo(managed.python).endswith("No module named 'demo'")
    assert props(fragments(managed.prefix)[-1], "secinstall:weakened") == [weakening]


def test_target_directory(secinstall: Secinstall, wheels: dict[str, Path],
                          tmp_path: Path) -> None:
    target = tmp_path / "target"
    assert secinstall("--target", target, *secinstall.pinned(wheels["app"],
                                                             wheels["lib"])).code == 0

    run = uninstall(secinstall, "--target", target, "app")

    assert run.code == 0, run.err
    assert not (target / "app").exists()
    assert not (target / "bin" / "app-hello").exists()
    assert (target / "lib-1.0.dist-info").is_dir()
    assert props(fragments(target)[-1], "secinstall:target:kind") == ["target"]


def test_user_scheme(secinstall: Secinstall, system_python: SystemPython,
                     make_wheel: WheelMaker, tmp_path: Path,
                     monkeypatch: pytest.MonkeyPatch) -> None:
    base = tmp_path / "userbase"
    monkeypatch.setenv("PYTHONUSERBASE", str(base))
    monkeypatch.delenv("PYTHONNOUSERSITE", raising=False)
    secinstall.index.add(make_wheel("demo", "1.0"))
    assert secinstall("--python", system_python.python, "--user", "demo").code == 0

    run = uninstall(secinstall, "--python", system_python.python, "--user", "demo")

    assert run.code == 0, run.err
    assert "Uninstalled: demo 1.0" in run.out
    assert not list(base.rglob("demo*"))
    assert props(fragments(base)[-1], "secinstall:removed") == ["demo==1.0"]
