"""`install --user`: pip's user scheme, under the target interpreter's user base
(PYTHONUSERBASE here), refused where pip refuses it: with --target or --prefix, in a
virtual environment that doesn't see the user site, and (PEP 668) for an externally managed
Python unless --break-system-packages.

The interpreter is a real one outside any virtual environment (tests/support/
system_python.py): inside one, `--user` is refused."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import make_venv
from tests.support.cli import Secinstall, dist_infos, run_cli
from tests.support.snapshot import snapshot
from tests.support.system_python import (
    SystemPython,
    assert_refused,
    fragment_weakenings,
    imports_demo,
    set_pip_switch,
)
from tests.support.wheels import WheelMaker

NOT_VISIBLE = ("Can not perform a '--user' install. User site-packages are not visible in "
               "this virtualenv.")


@pytest.fixture
def demo(secinstall: Secinstall, make_wheel: WheelMaker) -> Path:
    wheel = make_wheel("demo", "1.0")
    secinstall.index.add(wheel)
    return wheel


@pytest.fixture
def user_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    base = tmp_path / "userbase"
    monkeypatch.setenv("PYTHONUSERBASE", str(base))
    monkeypatch.delenv("PYTHONNOUSERSITE", raising=False)
    return base


def user_site(base: Path) -> Path:
    return base / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"


def assert_installed_for_the_user(system: SystemPython, base: Path) -> None:
    site = user_site(base)
    assert (site / "demo-1.0.dist-info").is_dir()
    assert (site / "demo" / "__init__.py").is_file()
    assert imports_demo(system.python, "__file__") == str(site / "demo" / "__init__.py")
    assert list(system.purelib.iterdir()) == []  # nothing in its own site-packages
    assert len(list((base / ".secinstall" / "sbom").glob("*.cdx.json"))) == 1


def test_user_installs_into_the_user_base(
    secinstall: Secinstall, system_python: SystemPython, demo: Path, user_base: Path
) -> None:
    run = secinstall("--python", system_python.python, "--user", "demo")

    assert run.code == 0, run.err
    assert "Installed: demo 1.0" in run.out
    assert_installed_for_the_user(system_python, user_base)
    assert fragment_weakenings(user_base) == []
    assert not (system_python.prefix / ".secinstall").exists()

    again = secinstall("--python", system_python.python, "--user", "demo")
    assert again.code == 0, again.err
    assert "Installed: demo" not in again.out  # already in the user site


def test_user_counts_the_interpreters_own_distributions_as_installed_as_pip_does(
    secinstall: Secinstall, system_python: SystemPython, demo: Path, user_base: Path,
    make_wheel: WheelMaker,
) -> None:
    # Pinned (no resolver): what its own site-packages hold satisfies a pin, as pip says;
    # another version goes into the user site, which shadows it, and the other stays.
    first = secinstall("--python", system_python.python, "--no-user", "demo")
    assert first.code == 0, first.err

    run = secinstall("--python", system_python.python, "--user",
                     *secinstall.pinned(demo))

    assert run.code == 0, run.err
    assert "Already installed: demo 1.0" in run.out
    assert "Installed:" not in run.out
    assert not user_site(user_base).exists()

    newer = make_wheel("demo", "2.0")
    secinstall.index.add(newer)
    upgrade = secinstall("--python", system_python.python, "--user", *secinstall.pinned(newer))

    assert upgrade.code == 0, upgrade.err
    assert "Installed: demo 2.0" in upgrade.out
    assert "replaced" not in upgrade.out
    assert dist_infos(user_site(user_base), "demo") == ["demo-2.0.dist-info"]
    assert dist_infos(system_python.purelib, "demo") == ["demo-1.0.dist-info"]
    assert imports_demo(system_python.python, "__file__") == str(
        user_site(user_base) / "demo" / "__init__.py")


def test_sbom_and_recover_of_the_user_scheme(
    secinstall: Secinstall, system_python: SystemPython, demo: Path, user_base: Path,
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:
    assert secinstall("--python", system_python.python, "--user", "demo").code == 0

    sbom = run_cli(secinstall.index, secinstall.ca_file, tmp_path, capsys,
                   ["sbom", "--python", str(system_python.python), "--user"], local=False)
    recover = run_cli(secinstall.index, secinstall.ca_file, tmp_path, capsys,
                      ["recover", "--python", str(system_python.python), "--user"], local=False)

    assert sbom.code == 0, sbom.err
    [component] = json.loads(sbom.out)["components"]
    assert (component["name"], component["version"]) == ("demo", "1.0")
    props = {p["name"]: p["value"] for p in component["properties"]}
    # From the fragment the --user install wrote under the user base.
    assert props["secinstall:verified"] == "true"
    assert (user_base / ".secinstall" / "sbom" / props["secinstall:fragment"]).is_file()
    assert recover.code == 0, recover.err


@pytest.mark.parametrize("where", ["variable", "config-file"])
def test_user_from_pips_configuration(
    secinstall: Secinstall, system_python: SystemPython, demo: Path, user_base: Path,
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, where: str,
) -> None:
    set_pip_switch(monkeypatch, tmp_path, "user", where)  # PIP_USER=1, or user = true

    run = secinstall("--python", system_python.python, "demo")

    assert run.code == 0, run.err
    assert_installed_for_the_user(system_python, user_base)


def test_no_user_overrides_pip_user(
    secinstall: Secinstall, system_python: SystemPython, demo: Path, user_base: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PIP_USER", "1")

    run = secinstall("--python", system_python.python, "--no-user", "demo")

    assert run.code == 0, run.err
    assert (system_python.purelib / "demo-1.0.dist-info").is_dir()
    assert not user_base.exists()


def test_user_in_a_virtual_environment_is_refused(
    secinstall: Secinstall, system_python: SystemPython, demo: Path, user_base: Path,
    tmp_path: Path,
) -> None:
    venv = make_venv(tmp_path / "venv", system_python.python)
    before = snapshot(venv.path)

    run = secinstall("--python", venv.path, "--user", "demo")

    assert run.code != 0
    assert "Traceback" not in run.err
    assert NOT_VISIBLE in run.err
    assert snapshot(venv.path) == before
    assert not user_base.exists()
    assert secinstall.index.requests == []


@pytest.mark.parametrize("option", ["--target", "--prefix"])
def test_user_with_target_or_prefix_is_refused(
    secinstall: Secinstall, system_python: SystemPython, demo: Path, user_base: Path,
    tmp_path: Path, option: str,
) -> None:
    elsewhere = tmp_path / "elsewhere"
    before = snapshot(system_python.prefix)

    run = secinstall("--python", system_python.python, "--user", option, elsewhere, "demo")

    assert run.code != 0
    assert "Traceback" not in run.err
    assert f"Can not combine '--user' and '{option}'" in run.err
    assert not elsewhere.exists()
    assert not user_base.exists()
    assert snapshot(system_python.prefix) == before


def test_user_for_an_externally_managed_python_is_refused_as_in_pip(
    secinstall: Secinstall, managed: SystemPython, demo: Path, user_base: Path
) -> None:
    before = snapshot(managed.prefix)

    run = secinstall("--python", managed.python, "--user", "demo")

    assert_refused(run.code, run.err, managed)
    assert snapshot(managed.prefix) == before
    assert not user_base.exists()

    run = secinstall("--python", managed.python, "--user", "--break-system-packages", "demo")

    assert run.code == 0, run.err
    assert_installed_for_the_user(managed, user_base)
    assert fragment_weakenings(user_base) == [
        "installing into an externally managed environment despite its PEP 668 marker "
        f"{managed.marker} (--break-system-packages)"]


def test_user_for_the_running_virtual_environment_is_refused(user_base: Path) -> None:
    # No --python: the running interpreter (the tests' virtual environment), described
    # in-process rather than by a subprocess run with -I.
    from secinstall.errors import TargetError
    from secinstall.target import resolve_target

    if sys.prefix == sys.base_prefix:
        pytest.skip("the tests don't run in a virtual environment")
    with pytest.raises(TargetError, match=r"not visible in this virtualenv"):
        resolve_target(user=True)
