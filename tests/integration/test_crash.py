"""Crash consistency: an install SIGKILLed at any point leaves an environment that
`secinstall recover` (or the next install) turns into exactly the state before or the
state after, upgrades included.

The kill points are every change the install makes to the environment: the process runs
under an audit hook (tests/support/crash.py) that SIGKILLs it just before its N-th
file-system change inside the environment, for every N.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

import secinstall
from tests.conftest import Venv, run_in
from tests.support.cli import pin
from tests.support.crash import KILL_BEFORE_CHANGE
from tests.support.index import LocalIndex
from tests.support.snapshot import snapshot
from tests.support.wheels import WheelMaker

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="uses /proc and SIGKILL")

SRC = Path(secinstall.__file__).resolve().parents[1]

# Run as `python KILLER ARGS...`: secinstall's CLI, killed before its N-th change inside
# CRASH_ROOT (CRASH_AT=0: never; the changes are listed in CRASH_LOG when it is set).
KILLER = KILL_BEFORE_CHANGE + """
import runpy
sys.argv[0] = "secinstall"
runpy.run_module("secinstall", run_name="__main__", alter_sys=True)
"""


def _normalised(env: Path) -> dict[str, tuple[str, int]]:
    """The environment's snapshot without secinstall's own bookkeeping, and with the source
    mtime in bytecode headers left out (a file written later compiles to a later mtime)."""
    state = snapshot(env, lambda rel: rel == ".secinstall" or rel.startswith(".secinstall/"))
    for rel, (_content, mode) in list(state.items()):
        if rel.endswith(".pyc"):
            data = bytearray((env / rel).read_bytes())
            data[8:12] = b"\0\0\0\0"
            state[rel] = (hashlib.sha256(data).hexdigest(), mode)
    return state


@dataclass
class Slot:
    """One environment path with its own before/after states (scripts name their
    interpreter's path, so states are compared at one path only)."""

    env: Path
    template: Path
    before: dict[str, tuple[str, int]] | None = None
    after: dict[str, tuple[str, int]] | None = None

    def restore(self) -> None:
        shutil.rmtree(self.env, ignore_errors=True)
        shutil.copytree(self.template, self.env, symlinks=True)


@dataclass
class Runner:
    index: LocalIndex
    ca_file: Path
    tmp: Path

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "PYTHONPATH": str(SRC), **extra}

    def common(self) -> list[str]:
        return ["--index-url", self.index.url, "--cert", str(self.ca_file),
                "--cache-dir", str(self.tmp / "cache")]

    def install(self, env: Path, requirements: Path, *, crash_at: int | None = None,
                log: Path | None = None) -> subprocess.CompletedProcess[str]:
        argv = ["install", "--python", str(env), "-r", str(requirements), *self.common()]
        if crash_at is None:
            command = [sys.executable, "-m", "secinstall", *argv]
            environ = self.env()
        else:
            killer = self.tmp / "killer.py"
            if not killer.exists():
                killer.write_text(KILLER, encoding="utf-8")
            command = [sys.executable, str(killer), *argv]
            environ = self.env(CRASH_ROOT=str(env), CRASH_AT=str(crash_at),
                               **({"CRASH_LOG": str(log)} if log else {}))
        return subprocess.run(command, env=environ, capture_output=True, text=True,
                              timeout=120, check=False)

    def recover(self, env: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "secinstall", "recover", "--python", str(env)],
            env=self.env(), capture_output=True, text=True, timeout=60, check=False)


def _requirements(tmp: Path, name: str, wheels: Sequence[Path]) -> Path:
    path = tmp / name
    path.write_text("".join(f"{pin(w)}\n" for w in wheels), encoding="utf-8")
    return path


def _make_venv(path: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)


@dataclass
class Lab:
    """Environments with lib 1.0 installed, and an upgrade to lib 2.0 (+ other 1.0) to kill."""

    runner: Runner
    slots: list[Slot]
    upgrade: Path
    #: The changes an uninterrupted upgrade makes, as the killer logged them.
    changes: list[str]

    def crash_all(self, points: Sequence[int], finish: str) -> list[str]:
        """Kill the upgrade before each change in `points`, then `finish` ("recover" or
        "install"); returns which state ("before" / "after") each ended in."""
        def run_slot(n: int) -> list[str]:
            return [self.crash(point, finish) for point in points
                    if point % len(self.slots) == n]

        with ThreadPoolExecutor(max_workers=len(self.slots)) as pool:
            return [o for outcomes in pool.map(run_slot, range(len(self.slots)))
                    for o in outcomes]

    def crash(self, point: int, finish: str) -> str:
        slot = self.slots[point % len(self.slots)]
        assert slot.before is not None and slot.after is not None
        slot.restore()
        killed = self.runner.install(slot.env, self.upgrade, crash_at=point)
        where = f"killed before change {point} ({self.changes[point - 1]}), then {finish}"
        assert killed.returncode == -signal.SIGKILL, f"not {where}: {killed.stderr}"
        if finish == "recover":
            finished = self.runner.recover(slot.env)
            expected = {"before": slot.before, "after": slot.after}
        else:  # the next install finds the journal and deals with it first
            finished = self.runner.install(slot.env, self.upgrade)
            expected = {"after": slot.after}
        assert finished.returncode == 0, f"{where}: {finished.stderr}"
        state = _normalised(slot.env)
        outcome = next((name for name, s in expected.items() if s == state), None)
        assert outcome is not None, (
            f"{where}: the environment is neither {' nor '.join(expected)}; "
            f"differences: {_differences(state, expected)}; {finish} said: "
            f"{finished.stdout}{finished.stderr}")
        assert not list((slot.env / ".secinstall").glob("txn-*")), where
        return outcome


WORKERS = 3


@pytest.fixture
def lab(index: LocalIndex, ca_file: Path, tmp_path: Path, make_wheel: WheelMaker) -> Lab:
    old = make_wheel("lib", "1.0", files={"lib/__init__.py": '__version__ = "1.0"\n',
                                          "lib/old.py": "OLD = 1\n"},
                     console_scripts={"lib-tool": "lib:main"})
    new = make_wheel("lib", "2.0", files={
        "lib/__init__.py": '__version__ = "2.0"\ndef main(): pass\n',
        "lib/new.py": "NEW = 1\n",
        "lib-2.0.data/data/share/lib/README": "new directories outside site-packages\n",
    }, console_scripts={"lib-tool": "lib:main"})
    # A top-level module: its bytecode goes into site-packages/__pycache__, which the
    # environment doesn't have yet.
    other = make_wheel("other", "1.0", files={"other_mod.py": "X = 1\n"},
                       console_scripts={"other-tool": "other_mod:X"})
    for wheel in (old, new, other):
        index.add(wheel)
    runner = Runner(index, ca_file, tmp_path)
    first = _requirements(tmp_path, "first.txt", [old])
    upgrade = _requirements(tmp_path, "upgrade.txt", [new, other])

    # One environment path per worker; each with its template (lib 1.0 installed), its
    # before state, and its after state from an uninterrupted upgrade.
    slots = []
    logs = []
    for n in range(WORKERS):
        slot = Slot(tmp_path / f"slot{n}" / "env", tmp_path / f"slot{n}" / "template")
        _make_venv(slot.env)
        done = runner.install(slot.env, first)
        assert done.returncode == 0, done.stderr
        shutil.copytree(slot.env, slot.template, symlinks=True)
        slot.before = _normalised(slot.env)
        logs.append(tmp_path / f"changes{n}.log")
        done = runner.install(slot.env, upgrade, crash_at=0, log=logs[-1])
        assert done.returncode == 0, done.stderr
        slot.after = _normalised(slot.env)
        assert slot.after != slot.before
        slots.append(slot)
    changes = logs[0].read_text().splitlines()
    assert all(len(log.read_text().splitlines()) == len(changes) for log in logs)
    # The upgrade really happened (checked once, on a reference run).
    env = slots[0].env
    venv = Venv(env, env / "bin" / "python", env / "bin",
                next((env / "lib").glob("python*/site-packages")))
    imported = run_in(venv, "import lib, lib.new, other_mod; print(lib.__version__)")
    assert imported.stdout == "2.0\n", imported.stderr
    assert not (venv.purelib / "lib" / "old.py").exists()
    return Lab(runner, slots, upgrade, changes)


def test_killed_upgrade_then_recover_is_before_or_after(lab: Lab) -> None:
    outcomes = lab.crash_all(range(1, len(lab.changes) + 1), "recover")

    # Kill points on both sides of the commit: some were rolled back, some finished.
    assert "before" in outcomes and "after" in outcomes, outcomes


def test_killed_upgrade_then_next_install_is_after(lab: Lab) -> None:
    # Every third point keeps this one shorter; the recover test takes every point.
    outcomes = lab.crash_all(range(1, len(lab.changes) + 1, 3), "install")

    assert set(outcomes) == {"after"}


def _differences(state: dict[str, tuple[str, int]],
                 expected: dict[str, dict[str, tuple[str, int]]]) -> str:
    parts = []
    for name, other in expected.items():
        diff = sorted(k for k in state.keys() | other.keys() if state.get(k) != other.get(k))
        parts.append(f"{name}: {diff[:8]}")
    return "; ".join(parts)


def test_a_failed_install_still_says_what_it_recovered(lab: Lab, tmp_path: Path) -> None:
    """The next install rolls back what a killed one left, then fails on its own: the
    roll-back changed the environment, so it is said (it used to be said on success only)."""
    slot = lab.slots[0]
    assert slot.before is not None
    slot.restore()
    # Killed while moving the old files aside: the journal says to roll back.
    killed = lab.runner.install(slot.env, lab.upgrade, crash_at=10)
    assert killed.returncode == -signal.SIGKILL
    assert list((slot.env / ".secinstall").glob("txn-*"))
    wrong_pin = tmp_path / "wrong-pin.txt"
    wrong_pin.write_text(f"lib==2.0 --hash=sha256:{'0' * 64}\n", encoding="utf-8")

    failed = lab.runner.install(slot.env, wrong_pin)

    assert failed.returncode == 1
    warning = "warning: rolled back an interrupted transaction"
    assert warning in failed.stderr
    assert failed.stderr.index(warning) < failed.stderr.index("error: ")
    assert _normalised(slot.env) == slot.before
