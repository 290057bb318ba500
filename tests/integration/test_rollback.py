"""A wheel that fails while being installed rolls the whole transaction back, upgrades included."""

from __future__ import annotations

import pytest

from tests.conftest import Venv, run_in
from tests.support.cli import Secinstall
from tests.support.snapshot import snapshot
from tests.support.wheels import WheelMaker

# How the failing wheel meets something in site-packages that no distribution owns:
# its package directory where a plain file is (the write fails with NotADirectoryError),
# or its plain file where a directory is.
OBSTACLES = {
    "file-where-package-goes": ("collide", {"collide/__init__.py": "X = 1\n"}),
    "directory-where-file-goes": ("collide/inner", {"collide": "not a package\n"}),
}


@pytest.mark.parametrize(
    ("obstacle", "position"),
    [("file-where-package-goes", 0), ("file-where-package-goes", 1),
     ("file-where-package-goes", 2), ("directory-where-file-goes", 2)],
    ids=["first-of-3", "second-of-3", "third-of-3", "third-of-3-directory-in-the-way"],
)
def test_failing_wheel_rolls_back_everything_including_upgrade(
    secinstall: Secinstall, venv: Venv, make_wheel: WheelMaker, position: int, obstacle: str
) -> None:
    site = venv.purelib
    old = make_wheel("lib", "1.0", files={"lib/__init__.py": '__version__ = "1.0"\n',
                                          "lib/old.py": "OLD = 1\n"},
                     console_scripts={"lib-tool": "lib:main"})
    secinstall.index.add(old)
    assert secinstall("--python", venv.path, *secinstall.pinned(old)).code == 0
    in_the_way, bad_files = OBSTACLES[obstacle]
    if obstacle == "file-where-package-goes":
        (site / in_the_way).write_text("a file no distribution owns\n")
    else:
        (site / in_the_way).mkdir(parents=True)
    wheels = [
        make_wheel("lib", "2.0", files={"lib/__init__.py": '__version__ = "2.0"\n',
                                        "lib/new.py": "NEW = 1\n"},
                   console_scripts={"lib-tool": "lib:main"}),
        make_wheel("other", "1.0", console_scripts={"other-tool": "other:main"}),
    ]
    bad = make_wheel("bad", "1.0", files={"bad/__init__.py": "", **bad_files})
    wheels.insert(position, bad)
    for wheel in wheels:
        secinstall.index.add(wheel)
    before = snapshot(venv.path)

    run = secinstall("--python", venv.path, *secinstall.pinned(*wheels))

    assert run.code == 1
    assert "Traceback" not in run.err
    assert bad.name in run.err
    assert "rolled back" in run.err
    assert snapshot(venv.path) == before
    assert not list((venv.path / ".secinstall").glob("txn-*"))
    imported = run_in(venv, "import lib, lib.old; print(lib.__version__)")
    assert imported.stdout == "1.0\n", imported.stderr
