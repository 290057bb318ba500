"""secinstall's command line (mostly `install`) run in-process against the local index, and
the requirement lines that pin what it installs by hash."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.utils import parse_wheel_filename

from secinstall.cli import main
from tests.conftest import Venv
from tests.support.index import LocalIndex


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def run_cli(index: LocalIndex, ca_file: Path, tmp: Path, capsys: pytest.CaptureFixture[str],
            argv: list[str], *, local: bool = True) -> Run:
    """`secinstall ARGV` in-process and what it printed; with `local`, pointed at `index`
    (trusting `ca_file`) with its cache in `tmp`."""
    if local:
        argv = [*argv, "--index-url", index.url, "--cert", str(ca_file),
                "--cache-dir", str(tmp / "cache")]
    code = main(argv)
    out, err = capsys.readouterr()
    return Run(code, out, err)


@dataclass
class Secinstall:
    """`python -m secinstall install` in-process, pointed at the local index.

    The integration tests get one as the `secinstall` fixture (tests/integration/conftest.py).
    """

    index: LocalIndex
    ca_file: Path
    tmp: Path
    capsys: pytest.CaptureFixture[str]
    files: int = 0

    def __call__(self, *args: str | Path, local: bool = True) -> Run:
        argv = ["install", *map(str, args)]
        return run_cli(self.index, self.ca_file, self.tmp, self.capsys, argv, local=local)

    def requirements(self, *lines: str) -> Path:
        """A new requirements file holding `lines`."""
        self.files += 1
        path = self.tmp / f"requirements-{self.files}.txt"
        path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        return path

    def pinned(self, *wheels: Path) -> tuple[str, Path]:
        """`-r FILE` arguments for a requirements file pinning exactly `wheels`."""
        return "-r", self.requirements(*map(pin, wheels))


def install(index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path, *args: str) -> int:
    """The exit code of `secinstall install ARGS` into `venv` from `index` (cache in `tmp_path`)."""
    return main([
        "install", "--cert", str(ca_file), "--index-url", index.url,
        "--cache-dir", str(tmp_path / "cache"), "--python", str(venv.python), *args,
    ])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pin(wheel: Path) -> str:
    """The requirements line pinning `wheel` exactly: `name==version --hash=sha256:...`."""
    name, version, _, _ = parse_wheel_filename(wheel.name)
    return f"{name}=={version} --hash=sha256:{sha256(wheel)}"


def pinned(tmp_path: Path, requirement: str, digest: str) -> list[str]:
    """`-r FILE --no-deps` for `requirement` pinned to the sha256 `digest`."""
    path = tmp_path / f"requirements-{digest[:12]}.txt"
    path.write_text(f"{requirement} --hash=sha256:{digest}\n", encoding="utf-8")
    return ["-r", str(path), "--no-deps"]


def dist_infos(site: Path, name: str) -> list[str]:
    """The names of the `.dist-info` directories of `name` in `site`, sorted."""
    return sorted(p.name for p in site.glob(f"{name}-*.dist-info"))


def pip_install(python: Path | Venv, *args: str | Path, env: Mapping[str, str] | None = None,
                ) -> subprocess.CompletedProcess[str]:
    """The dev environment's real pip, installing into the environment of `python` (an
    interpreter, or a venv): as the oracle, or for what secinstall must find installed by
    another tool. Its outcome is the caller's to check."""
    where = python.python if isinstance(python, Venv) else python
    return subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(where), "install", *map(str, args)],
        capture_output=True, text=True, check=False, env=env, timeout=300)
