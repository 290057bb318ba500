"""Shared fixtures: a clean environment, a trustme CA, a local HTTPS index, wheels, venvs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme

from tests.support.index import LocalIndex, ca_bundle
from tests.support.wheels import WheelMaker, build_wheel

# Variables outside PIP_* that would point clients at the machine's own setup.
_CLEARED = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "VIRTUAL_ENV")


@pytest.fixture(autouse=True)
def _clean_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Hide the machine's pip/secinstall configuration and user cache from every test.

    SSL_CERT_FILE stays: it names the system bundle the OS trust store relies on here.
    """
    for key in list(os.environ):
        # *_proxy (HTTPS_PROXY, NO_PROXY, ...): a test that wants a proxy sets them.
        if (key.startswith(("PIP_", "SECINSTALL_")) or key in _CLEARED
                or key.lower().endswith("_proxy")):
            monkeypatch.delenv(key)
    # pip loads no configuration file at all when PIP_CONFIG_FILE is os.devnull.
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_DISABLE_PIP_VERSION_CHECK", "1")
    monkeypatch.setenv("PIP_NO_INPUT", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test CA as a PEM bundle, e.g. for `--cert`."""
    return ca_bundle(ca, tmp_path_factory.mktemp("ca"))


@pytest.fixture
def index(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIndex]:
    with LocalIndex(ca, tmp_path_factory.mktemp("index")) as started:
        yield started
    # Connection errors (refused certificates, clients hanging up) are part of tests;
    # anything else is a bug in the index that a client would only see as a dropped line.
    bugs = [e for e in started.server_errors if not isinstance(e, OSError)]
    assert not bugs, f"the local index failed while serving: {bugs!r}"


@pytest.fixture(scope="session")
def wheel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wheels")


@pytest.fixture
def make_wheel(wheel_dir: Path) -> WheelMaker:
    """`build_wheel` into a new directory per call, so two variants of one wheel can coexist."""

    def make(name: str, version: str, **options: Any) -> Path:
        return build_wheel(Path(tempfile.mkdtemp(dir=wheel_dir)), name, version, **options)

    return make


@dataclass(frozen=True)
class Venv:
    path: Path
    python: Path
    bin: Path
    purelib: Path


def run_in(venv: Venv, code: str) -> subprocess.CompletedProcess[str]:
    """Run Python `code` with the venv's interpreter (not checked, output captured).

    PYTHONPATH is dropped so only what is installed in the venv is importable, and no
    bytecode is written so the run leaves the venv as it was.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run(
        [str(venv.python), "-c", code], check=False, capture_output=True, text=True, env=env
    )


def make_venv(path: Path, base: Path | str = sys.executable) -> Venv:
    """A new, empty virtual environment at `path`, of the interpreter `base` (no pip;
    ~50 ms, so one per test is affordable)."""
    subprocess.run([str(base), "-m", "venv", "--without-pip", str(path)], check=True)
    bin_dir = path / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / ("python.exe" if os.name == "nt" else "python")
    query = "import json, sysconfig; print(json.dumps(sysconfig.get_path('purelib')))"
    out = subprocess.run(
        [str(python), "-c", query], check=True, capture_output=True, text=True
    ).stdout
    return Venv(path=path, python=python, bin=bin_dir, purelib=Path(json.loads(out)))


@pytest.fixture
def venv(tmp_path: Path) -> Venv:
    """A new, empty virtual environment."""
    return make_venv(tmp_path / "venv")
