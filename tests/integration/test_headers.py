"""A wheel's headers (`<name>.data/headers/`) go where pip puts them, each distribution's in
a directory of its own: pip itself, run on the same wheel, is the oracle."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.conftest import make_venv
from tests.support.cli import Secinstall, pip_install
from tests.support.wheels import WheelMaker


def headers_of(wheel_maker: WheelMaker, name: str) -> Path:
    return wheel_maker(name, "1.0", files={
        f"{name}/__init__.py": "",
        f"{name}-1.0.data/headers/config.h": f"#define NAME \"{name}\"\n",
        f"{name}-1.0.data/headers/sub/more.h": "",
    })


def found(root: Path) -> list[str]:
    """Every `.h` file under `root`, relative to it."""
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.h"))


# The interpreter outside any virtual environment: only with --prefix, which leaves it as
# it is.
BASE_PYTHON = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"


@pytest.mark.parametrize("where", ["environment", "prefix", "target", "prefix-outside-venv"])
def test_headers_go_where_pip_puts_them(
    secinstall: Secinstall, make_wheel: WheelMaker, tmp_path: Path, where: str,
) -> None:
    wheels = [headers_of(make_wheel, "alpha"), headers_of(make_wheel, "beta")]
    for wheel in wheels:
        secinstall.index.add(wheel)
    roots = {}
    for tool in ("pip", "secinstall"):
        python = make_venv(tmp_path / f"venv-{tool}").python
        option: tuple[str, Path] | tuple[()] = ()
        if where.startswith("prefix"):
            option = ("--prefix", tmp_path / f"prefix-{tool}")
        elif where == "target":
            option = ("--target", tmp_path / f"target-{tool}")
        if where == "prefix-outside-venv":
            python = BASE_PYTHON
        roots[tool] = option[1] if option else python.parent.parent
        if tool == "pip":
            done = pip_install(python, "--no-index", "--no-deps", "--no-compile", *option,
                               *wheels)
            assert done.returncode == 0, done.stderr
        else:
            run = secinstall("--python", python, *option, *secinstall.pinned(*wheels))
            assert run.code == 0, run.err

    ours = found(roots["secinstall"])
    assert ours == found(roots["pip"])
    # Each distribution's config.h is its own.
    assert len([p for p in ours if p.endswith("/config.h")]) == 2
    for path in ours:
        if path.endswith("config.h"):
            name = Path(path).parent.name
            assert (roots["secinstall"] / path).read_text() == f"#define NAME \"{name}\"\n"
