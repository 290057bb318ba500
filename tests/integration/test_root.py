"""`secinstall install --root DIR`, pip's option for packagers' build roots: every file at
its final path re-rooted under DIR, the installed files naming the final paths, and
nothing written outside DIR."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Venv
from tests.integration import test_install
from tests.integration.test_install import files_under, record_of
from tests.support.cli import Secinstall, dist_infos, pin
from tests.support.snapshot import snapshot
from tests.support.wheels import WheelMaker

app_and_lib = test_install.app_and_lib  # the fixture: app 1.0 (a console script), lib


@pytest.fixture
def app_reqs(secinstall: Secinstall, app_and_lib: dict[str, Path]) -> Path:
    """A requirements file pinning app 1.0 and lib 1.0."""
    return secinstall.requirements(pin(app_and_lib["app"]), pin(app_and_lib["lib1"]))


def rooted(root: Path, path: Path) -> Path:
    """`path` re-rooted under `root`, as pip's change_root does."""
    return root / path.relative_to(path.anchor)


def _fragment_props(state_dir: Path) -> dict[str, list[str]]:
    (fragment,) = (state_dir / "sbom").glob("*.cdx.json")
    props: dict[str, list[str]] = {}
    for prop in json.loads(fragment.read_text(encoding="utf-8"))["metadata"]["properties"]:
        props.setdefault(prop["name"], []).append(prop["value"])
    return props


def test_root_installs_under_it_as_a_normal_install_would_be(
    secinstall: Secinstall, venv: Venv, app_reqs: Path, tmp_path: Path
) -> None:
    root = tmp_path / "buildroot"
    before = snapshot(venv.path)

    run = secinstall("--python", venv.python, "--root", root, "-r", app_reqs)

    assert run.code == 0, run.err
    assert snapshot(venv.path) == before  # the real environment is untouched
    site = rooted(root, venv.purelib)
    for name, top in (("app", "app"), ("lib", "lib")):
        dist_info = site / f"{name}-1.0.dist-info"
        record = record_of(dist_info)
        on_disk = files_under(site, top, dist_info.name)
        if name == "app":  # the script, relative to the final site-packages, as usual
            on_disk.add(os.path.relpath(venv.bin / "app-hello", venv.purelib))
        assert set(record) == on_disk
        assert f"{top}/__pycache__/__init__.{sys.implementation.cache_tag}.pyc" in record
    script = rooted(root, venv.bin / "app-hello")
    assert script.read_text().splitlines()[0] == f"#!{venv.python}"  # the real interpreter
    # secinstall's own state (lock, journal, SBOM fragment) is under the root too, and
    # the fragment names the final paths and the root.
    props = _fragment_props(rooted(root, venv.path) / ".secinstall")
    assert props["secinstall:target:root"] == [str(venv.path)]
    assert props["secinstall:target:destdir"] == [str(root)]
    # Once the root's tree is where it names (here: copied over the real environment),
    # it runs.
    shutil.copytree(rooted(root, venv.path), venv.path, dirs_exist_ok=True)
    out = subprocess.run([str(venv.bin / "app-hello")], capture_output=True, text=True,
                         check=False)
    assert out.stdout == "app 1.0 with lib 1.0\n", out.stderr


def test_root_with_prefix(
    secinstall: Secinstall, venv: Venv, app_reqs: Path, tmp_path: Path
) -> None:
    root, prefix = tmp_path / "buildroot", tmp_path / "usr"
    before = snapshot(venv.path)

    run = secinstall("--python", venv.python, "--root", root, "--prefix", prefix, "-r", app_reqs)

    assert run.code == 0, run.err
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    site = rooted(root, prefix / "lib" / version / "site-packages")
    assert (site / "app" / "cli.py").is_file()
    assert dist_infos(site, "lib") == ["lib-1.0.dist-info"]
    assert rooted(root, prefix / "bin" / "app-hello").is_file()
    assert (rooted(root, prefix) / ".secinstall").is_dir()
    assert not prefix.exists()
    assert snapshot(venv.path) == before


def test_fedoras_pip_line_installs_under_root_what_the_environment_has_already(
    secinstall: Secinstall, venv: Venv, make_wheel: WheelMaker, tmp_path: Path
) -> None:
    # pyproject-rpm-macros' %pyproject_install, with the package already installed in the
    # environment: pip counts what is installed there (not under the root), hence
    # --ignore-installed, with which it is installed under the root anyway.
    wheeldir = tmp_path / "wheeldir"
    wheeldir.mkdir()
    shutil.copy(make_wheel("demo", "1.0", files={"demo/__init__.py": "x = 1\n"}), wheeldir)
    fedora: list[str | Path] = [
        "--no-deps", "--disable-pip-version-check", "--progress-bar", "off", "--verbose",
        "--ignore-installed", "--no-warn-script-location", "--no-index", "--no-cache-dir",
        "--find-links", wheeldir, "demo"]
    assert secinstall("--python", venv.python, *fedora, local=False).code == 0
    assert dist_infos(venv.purelib, "demo") == ["demo-1.0.dist-info"]
    root = tmp_path / "buildroot"
    before = snapshot(venv.path)

    run = secinstall("--python", venv.python, "--root", root, *fedora, local=False)

    assert run.code == 0, run.err
    site = rooted(root, venv.purelib)
    assert (site / "demo" / "__init__.py").read_text() == "x = 1\n"
    assert dist_infos(site, "demo") == ["demo-1.0.dist-info"]
    assert snapshot(venv.path) == before

    # Without --ignore-installed, what the environment has satisfies the requirement, as
    # in pip: nothing goes under a new root.
    other = tmp_path / "other"
    fedora.remove("--ignore-installed")
    run = secinstall("--python", venv.python, "--root", other, *fedora, local=False)
    assert run.code == 0, run.err
    assert not dist_infos(rooted(other, venv.purelib), "demo")
    assert snapshot(venv.path) == before


def test_root_with_target_is_refused(
    secinstall: Secinstall, venv: Venv, app_and_lib: dict[str, Path], tmp_path: Path
) -> None:
    run = secinstall("--python", venv.python, "--root", tmp_path / "r", "--target",
                     tmp_path / "t", *secinstall.pinned(app_and_lib["lib1"]))

    assert run.code != 0
    assert "--target and --root can't be used together" in run.err
    assert not (tmp_path / "r").exists()
    assert not (tmp_path / "t").exists()


def test_a_failure_mid_install_rolls_back_inside_the_root(
    secinstall: Secinstall, venv: Venv, make_wheel: WheelMaker, tmp_path: Path
) -> None:
    root = tmp_path / "buildroot"
    good = make_wheel("good", "1.0", files={"good/__init__.py": ""})
    secinstall.index.add(good)
    assert secinstall("--python", venv.python, "--root", root,
                      *secinstall.pinned(good)).code == 0
    site = rooted(root, venv.purelib)
    before_root, before_venv = snapshot(root), snapshot(venv.path)
    # A wheel whose file lands where a directory is: installing it fails midway, after
    # other files of it were placed.
    bad = make_wheel("bad", "1.0", files={"bad/__init__.py": "", "good": "in the way\n"})
    secinstall.index.add(bad)

    run = secinstall("--python", venv.python, "--root", root, *secinstall.pinned(bad))

    assert run.code != 0
    assert "a directory is there" in run.err
    assert not (site / "bad").exists()
    assert snapshot(root, lambda rel: ".secinstall" in rel) == {
        k: v for k, v in before_root.items() if ".secinstall" not in k}
    assert snapshot(venv.path) == before_venv


@pytest.mark.parametrize("variable", [True, False])
def test_root_from_pips_configuration(
    secinstall: Secinstall, venv: Venv, app_and_lib: dict[str, Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, variable: bool,
) -> None:
    root = tmp_path / "buildroot"
    if variable:
        monkeypatch.setenv("PIP_ROOT", str(root))
    else:
        config = tmp_path / "pip.conf"
        config.write_text(f"[install]\nroot = {root}\n", encoding="utf-8")
        monkeypatch.setenv("PIP_CONFIG_FILE", str(config))

    run = secinstall("--python", venv.python, *secinstall.pinned(app_and_lib["lib1"]))

    assert run.code == 0, run.err
    assert dist_infos(rooted(root, venv.purelib), "lib") == ["lib-1.0.dist-info"]
    assert not dist_infos(venv.purelib, "lib")
