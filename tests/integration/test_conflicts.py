"""After an install, pip's warning about requirements it left unmet in the environment:
real wheels from the local index, into real virtual environments."""

from __future__ import annotations

from pathlib import Path

import pytest

from secinstall.conflicts import HEADLINE
from tests.conftest import Venv
from tests.support.cli import Secinstall, dist_infos
from tests.support.wheels import WheelMaker

CONFLICT = "app 1.0 requires lib>=2, but you have lib 1.0 which is incompatible."


@pytest.fixture
def app_with_lib_2(secinstall: Secinstall, venv: Venv, make_wheel: WheelMaker) -> Path:
    """app 1.0 (which requires lib>=2) installed with lib 2.0; lib 1.0's wheel, on the
    index too, returned."""
    old = make_wheel("lib", "1.0")
    for wheel in (old, make_wheel("lib", "2.0"), make_wheel("app", "1.0", requires=["lib>=2"])):
        secinstall.index.add(wheel)
    run = secinstall("--python", venv.path, "app")
    assert run.code == 0, run.err
    assert HEADLINE not in run.err
    return old


def test_an_install_that_breaks_a_requirement_says_so_as_pip_does(
    secinstall: Secinstall, venv: Venv, app_with_lib_2: Path,
) -> None:
    run = secinstall("--python", venv.path, *secinstall.pinned(app_with_lib_2))

    # A warning: the install stands (pip's exit code too), and says what it broke.
    assert run.code == 0, run.err
    assert dist_infos(venv.purelib, "lib") == ["lib-1.0.dist-info"]
    assert f"warning: {HEADLINE}\n  {CONFLICT}\n" in run.err


def test_an_install_that_mends_it_says_nothing(
    secinstall: Secinstall, venv: Venv, app_with_lib_2: Path,
) -> None:
    assert secinstall("--python", venv.path, *secinstall.pinned(app_with_lib_2)).code == 0

    run = secinstall("--python", venv.path, "-U", "lib")

    assert run.code == 0, run.err
    assert dist_infos(venv.purelib, "lib") == ["lib-2.0.dist-info"]
    assert HEADLINE not in run.err


@pytest.mark.parametrize("how", ["--no-warn-conflicts", "--no-deps", "PIP_NO_WARN_CONFLICTS"])
def test_no_warning_when_told_not_to_or_without_dependencies(
    secinstall: Secinstall, venv: Venv, app_with_lib_2: Path,
    monkeypatch: pytest.MonkeyPatch, how: str,
) -> None:
    # As in pip: --no-deps says the user takes care of requirements; and pip's config
    # stores the value of the store_false option as is, so "no" is what turns it off.
    if how.startswith("PIP_"):
        monkeypatch.setenv(how, "no")
        args: tuple[str, ...] = ()
    else:
        args = (how,)
    run = secinstall("--python", venv.path, *args, *secinstall.pinned(app_with_lib_2))

    assert run.code == 0, run.err
    assert dist_infos(venv.purelib, "lib") == ["lib-1.0.dist-info"]
    assert HEADLINE not in run.err


def test_a_target_directory_is_not_judged(
    secinstall: Secinstall, tmp_path: Path, make_wheel: WheelMaker,
) -> None:
    # What --target's distributions need may be the interpreter's, or another directory's:
    # pip's check is of an environment.
    app, lib = make_wheel("app", "1.0", requires=["lib>=2"]), make_wheel("lib", "1.0")
    for wheel in (app, lib):
        secinstall.index.add(wheel)
    run = secinstall("--target", tmp_path / "t", "--no-deps", *secinstall.pinned(app))
    assert run.code == 0, run.err
    run = secinstall("--target", tmp_path / "t", *secinstall.pinned(lib))
    assert run.code == 0, run.err
    assert dist_infos(tmp_path / "t", "lib") == ["lib-1.0.dist-info"]
    assert HEADLINE not in run.err
