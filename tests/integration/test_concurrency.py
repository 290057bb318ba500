"""Concurrency: secinstall processes sharing an environment take turns (the lock), never
interleave, and processes sharing a download cache never see each other's partial files."""

from __future__ import annotations

import base64
import csv
import hashlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import secinstall
from secinstall.transaction import environment_lock
from tests.conftest import Venv, run_in
from tests.support import faults
from tests.support.cache import cached_files
from tests.support.cli import dist_infos, pin, sha256
from tests.support.index import LocalIndex
from tests.support.snapshot import snapshot
from tests.support.wheels import WheelMaker

SRC = Path(secinstall.__file__).resolve().parents[1]
FILLER = 150  # files per wheel: installing takes long enough for interleaving to show


@dataclass
class Process:
    """A `python -m secinstall install` subprocess, its output collected as it comes."""

    popen: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append(line)

    def wait_for_line(self, text: str, timeout: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return True
            if self.popen.poll() is not None:
                self._reader.join(5)
                return any(text in line for line in self.lines)
            time.sleep(0.05)
        return False

    def finish(self, timeout: float = 120.0) -> tuple[int, str]:
        code = self.popen.wait(timeout)
        self._reader.join(5)
        self.close()
        return code, "".join(self.lines)

    def close(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()
        self._reader.join(5)
        if self.popen.stdout is not None:
            self.popen.stdout.close()


@dataclass
class Starter:
    index: LocalIndex
    ca_file: Path
    tmp: Path
    count: int = 0
    started: list[Process] = field(default_factory=list)

    def __call__(self, env: Path, wheels: Sequence[Path], *extra: str,
                 cache: Path | None = None) -> Process:
        self.count += 1
        requirements = self.tmp / f"requirements-{self.count}.txt"
        requirements.write_text("".join(f"{pin(w)}\n" for w in wheels), encoding="utf-8")
        command = [sys.executable, "-m", "secinstall", "install", "--python", str(env),
                   "-r", str(requirements), "--index-url", self.index.url,
                   "--cert", str(self.ca_file), "--cache-dir", str(cache or self.tmp / "cache"),
                   *extra]
        environ = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONUNBUFFERED": "1"}
        popen = subprocess.Popen(command, env=environ, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
        self.started.append(Process(popen))
        return self.started[-1]


@pytest.fixture
def start(index: LocalIndex, ca_file: Path, tmp_path: Path) -> Iterator[Starter]:
    starter = Starter(index, ca_file, tmp_path)
    yield starter
    for process in starter.started:  # those a failed test left running
        process.close()


def _package(name: str, version: str, marker: str) -> dict[str, str | bytes]:
    files: dict[str, str | bytes] = {f"{name}/__init__.py": f'__version__ = "{version}"\n',
                                     f"{name}/only_{marker}.py": "X = 1\n"}
    files.update({f"{name}/f{i}.py": f"# {name} {version} file {i}\n" for i in range(FILLER)})
    return files


def _assert_consistent(site: Path, name: str) -> str:
    """Exactly one version of `name` is installed, whole: every file its RECORD lists is
    there with the recorded hash, and its package holds nothing else. Returns the version."""
    found = dist_infos(site, name)
    assert len(found) == 1, found
    version = found[0].removeprefix(f"{name}-").removesuffix(".dist-info")
    listed = set()
    with (site / found[0] / "RECORD").open(newline="", encoding="utf-8") as f:
        for row in csv.reader(f):
            path = os.path.normpath(site / row[0])
            listed.add(path)
            if row[1]:
                algo, _, expected = row[1].partition("=")
                digest = hashlib.new(algo, Path(path).read_bytes()).digest()
                assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == expected, path
    on_disk = {os.path.normpath(p) for p in (site / name).rglob("*") if p.is_file()}
    assert on_disk <= listed, sorted(on_disk - listed)[:5]
    return version


def test_second_install_waits_for_the_lock(
    start: Starter, venv: Venv, make_wheel: WheelMaker, index: LocalIndex
) -> None:
    wheel = make_wheel("lib", "1.0")
    index.add(wheel)
    with environment_lock(venv.path / ".secinstall"):
        before = snapshot(venv.path)
        process = start(venv.path, [wheel], "-v")
        assert process.wait_for_line("waiting for another secinstall process"), process.lines
        time.sleep(0.5)
        assert process.popen.poll() is None, "it did not wait for the lock"
        assert snapshot(venv.path) == before

    code, output = process.finish()

    assert code == 0, output
    assert run_in(venv, "import lib; print(lib.__version__)").stdout == "1.0\n"


def test_two_installs_into_one_environment_both_finish_whole(
    start: Starter, venv: Venv, make_wheel: WheelMaker, index: LocalIndex
) -> None:
    alpha = make_wheel("alpha", "1.0", files=_package("alpha", "1.0", "a"))
    beta = make_wheel("beta", "1.0", files=_package("beta", "1.0", "b"))
    both = faults.together(2)  # both processes are downloading at once, then race on
    for wheel in (alpha, beta):
        index.add(wheel)
        index.misbehave(f"/files/{wheel.name}", both)

    first, second = start(venv.path, [alpha]), start(venv.path, [beta])
    results = [first.finish(), second.finish()]

    assert [code for code, _ in results] == [0, 0], results
    assert _assert_consistent(venv.purelib, "alpha") == "1.0"
    assert _assert_consistent(venv.purelib, "beta") == "1.0"
    assert not list((venv.path / ".secinstall").glob("txn-*"))
    imported = run_in(venv, "import alpha.only_a, beta.only_b; print('ok')")
    assert imported.stdout == "ok\n", imported.stderr


def test_two_versions_installed_at_once_end_as_one_whole_version(
    start: Starter, venv: Venv, make_wheel: WheelMaker, index: LocalIndex
) -> None:
    one = make_wheel("lib", "1.0", files=_package("lib", "1.0", "one"))
    two = make_wheel("lib", "2.0", files=_package("lib", "2.0", "two"))
    both = faults.together(2)
    for wheel in (one, two):
        index.add(wheel)
        index.misbehave(f"/files/{wheel.name}", both)

    first, second = start(venv.path, [one]), start(venv.path, [two])
    results = [first.finish(), second.finish()]

    assert [code for code, _ in results] == [0, 0], results
    version = _assert_consistent(venv.purelib, "lib")
    marker = {"1.0": "one", "2.0": "two"}[version]
    names = sorted(p.name for p in (venv.purelib / "lib").glob("only_*.py"))
    assert names == [f"only_{marker}.py"]
    imported = run_in(venv, "import lib; print(lib.__version__)")
    assert imported.stdout == f"{version}\n", imported.stderr
    # The one that went second replaced the first (it saw the finished install).
    assert any("replaced lib" in output for _, output in results), results


def test_two_processes_download_one_file_into_one_cache(
    start: Starter, venv: Venv, tmp_path: Path, make_wheel: WheelMaker, index: LocalIndex
) -> None:
    wheel = make_wheel("lib", "1.0", files={"lib/__init__.py": '__version__ = "1.0"\n',
                                             "lib/blob.bin": os.urandom(512 * 1024)})
    index.add(wheel)
    # Both downloads are under way at once, slowly, into the same cache directory.
    path = f"/files/{wheel.name}"
    index.misbehave(path, faults.together(2, faults.drip(1.0)), times=2)
    other = tmp_path / "other-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(other)], check=True)
    cache = tmp_path / "shared-cache"

    first = start(venv.path, [wheel], cache=cache)
    second = start(other, [wheel], cache=cache)
    results = [first.finish(), second.finish()]

    assert [code for code, _ in results] == [0, 0], results
    assert index.requests.count(path) == 2  # neither took the other's file half-written
    files = cached_files(cache)
    assert [p.name for p in files] == [wheel.name], files
    assert files[0].parent.name == sha256(wheel)
    assert files[0].read_bytes() == wheel.read_bytes()
    for env in (venv.path, other):
        imported = subprocess.run([str(env / "bin" / "python"), "-c",
                                   "import lib; print(lib.__version__)"],
                                  capture_output=True, text=True, check=False)
        assert imported.stdout == "1.0\n", imported.stderr
