"""`secinstall hook enable|disable`: pip's own configuration (read back by the real pip)
points at the verifying index, a hooked pip installs only verified files, and disabling
puts the previous file back byte for byte."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from secinstall.cli import main
from secinstall.config import load_pip_settings
from tests.conftest import Venv
from tests.support.cli import pip_install
from tests.support.index import LocalIndex
from tests.support.pep740 import PROJECT, PUBLISHED_BY, WHEEL, is_installed, serve_real_wheel
from tests.support.serve import ServeProcess
from tests.support.snapshot import snapshot
from tests.support.tampering import flip_middle_byte
from tests.support.wheels import WheelMaker

# Comments, two sections, a multi-line value, no final newline: all must come back as is.
ORIGINAL = (
    b"# my pip settings\n"
    b"[global]\n"
    b"timeout = 60\n"
    b"index-url = https://mirror.example/simple/\n"
    b"extra-index-url =\n"
    b"    https://one.example/simple/\n"
    b"    https://two.example/simple/\n"
    b"; keep this comment\n"
    b"[install]\n"
    b"find-links = /srv/wheels\n"
    b"no-compile = no"
)


@pytest.fixture
def user_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """pip's user configuration file in a temporary home; pip reads configuration files."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PIP_CONFIG_FILE")
    return Path(os.environ["XDG_CONFIG_HOME"]) / "pip" / "pip.conf"


def pip_config() -> dict[str, str]:
    """What the real pip reads from its configuration files (`pip config list`)."""
    out = subprocess.run([sys.executable, "-m", "pip", "config", "list"], check=True,
                         capture_output=True, text=True).stdout
    items = (line.partition("=") for line in out.splitlines() if "=" in line)
    return {key: value.strip("'") for key, _, value in items}


def files_in(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir()} if directory.is_dir() else {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def hook(*args: str) -> int:
    return main(["hook", *args])


# --- the configuration file ------------------------------------------------------------------


def test_enable_points_pip_at_the_index_and_disable_restores_the_file_exactly(
    user_config: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    user_config.parent.mkdir(parents=True)
    user_config.write_bytes(ORIGINAL)
    user_config.chmod(0o600)
    before = pip_config()
    # (pip prints a multi-line value with its newlines as "\n")
    assert before["global.extra-index-url"].replace("\\n", " ").split() == [
        "https://one.example/simple/", "https://two.example/simple/"]

    assert hook("enable", "--port", "8765") == 0

    out = capsys.readouterr().out
    assert f"{user_config} now points at the verifying index http://127.0.0.1:8765/simple/" in out
    assert "pip now needs `secinstall serve --port 8765` running" in out
    assert "`secinstall hook disable`" in out
    seen = pip_config()
    assert seen["global.index-url"] == "http://127.0.0.1:8765/simple/"
    assert not {"global.extra-index-url", "install.find-links"} & seen.keys()
    # Everything else stays in force.
    assert (seen["global.timeout"], seen["install.no-compile"]) == ("60", "no")
    settings = load_pip_settings(os.environ)
    assert settings["index-url"].value == "http://127.0.0.1:8765/simple/"
    assert "extra-index-url" not in settings and "find-links" not in settings
    assert "# (secinstall hook) index-url = https://mirror.example/simple/" in \
        user_config.read_text()

    assert hook("disable") == 0

    assert f"Restored pip's user configuration {user_config}" in capsys.readouterr().out
    assert files_in(user_config.parent) == {"pip.conf": ORIGINAL}
    assert stat.S_IMODE(user_config.stat().st_mode) == 0o600
    assert pip_config() == before


def test_without_a_previous_file_disable_removes_what_enable_created(
    user_config: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    config_home = user_config.parent.parent
    before = sorted(p.name for p in config_home.iterdir())

    assert hook("enable") == 0
    assert "there was no such file before" in capsys.readouterr().out
    assert pip_config()["global.index-url"] == "http://127.0.0.1:8740/simple/"

    assert hook("disable") == 0
    assert f"Removed {user_config}" in capsys.readouterr().out
    assert not user_config.exists()
    assert sorted(p.name for p in config_home.iterdir()) == before


def test_enabling_again_changes_the_port_and_keeps_the_first_saved_file(
    user_config: Path,
) -> None:
    user_config.parent.mkdir(parents=True)
    user_config.write_bytes(ORIGINAL)

    assert hook("enable", "--port", "8765") == 0
    assert hook("enable", "--port", "8766") == 0
    assert pip_config()["global.index-url"] == "http://127.0.0.1:8766/simple/"

    assert hook("disable") == 0
    assert files_in(user_config.parent) == {"pip.conf": ORIGINAL}


def test_index_settings_of_files_read_before_are_overridden(
    user_config: Path, tmp_path: Path,
) -> None:
    # pip reads ~/.pip/pip.conf before the XDG file the hook edits: its settings must not
    # give pip another way around the verifying index.
    legacy = tmp_path / "home" / ".pip" / "pip.conf"
    legacy.parent.mkdir(parents=True)
    legacy.write_text("[global]\nextra-index-url = https://elsewhere.example/simple/\n"
                      "[install]\nfind-links = /srv/wheels\nno-index = yes\n")
    before = pip_config()

    assert hook("enable", "--port", "8765") == 0

    seen = pip_config()
    url = "http://127.0.0.1:8765/simple/"
    assert (seen["global.index-url"], seen["global.extra-index-url"]) == (url, url)
    assert (seen["install.find-links"], seen["install.no-index"]) == (url, "false")
    assert hook("disable") == 0
    assert pip_config() == before
    assert not user_config.exists()


def test_what_still_bypasses_the_hook_is_reported(
    user_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "https://elsewhere.example/simple/")
    assert hook("enable") == 0
    err = capsys.readouterr().err
    assert "PIP_INDEX_URL is set in this environment and wins over every configuration " \
           "file" in err
    assert hook("disable") == 0

    env_file = tmp_path / "env-pip.conf"
    env_file.write_text("[global]\ntimeout = 5\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(env_file))
    assert hook("enable") == 0
    assert f"pip does not read {user_config} while PIP_CONFIG_FILE is set" in \
        capsys.readouterr().err
    assert hook("disable") == 0


def test_disable_without_a_hook_is_an_error(
    user_config: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    assert hook("disable") == 1
    assert f"no secinstall hook is enabled in pip's user configuration {user_config}" in \
        capsys.readouterr().err


# --- a hooked pip -----------------------------------------------------------------------------


def test_hooked_pip_installs_only_verified_files(
    user_config: Path, index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path,
    make_wheel: WheelMaker,
) -> None:
    # Before the hook, pip used the local HTTPS index with its CA: after it, `serve`
    # (given no index options) fetches from that same index, with that CA.
    original = f"[global]\nindex-url = {index.url}\ncert = {ca_file}\n".encode()
    user_config.parent.mkdir(parents=True)
    user_config.write_bytes(original)
    serve_real_wheel(index)
    tampered = make_wheel("demo-pkg", "1.0")
    index.add(tampered, serve_bytes=flip_middle_byte(tampered.read_bytes()))
    port = free_port()

    assert hook("enable", "--port", str(port)) == 0
    with ServeProcess(["--port", str(port), "--cache-dir", str(tmp_path / "cache")]) as server:
        installed = pip_install(venv, "--no-deps", f"{PROJECT}==0.0.30")
        before = snapshot(venv.path)
        refused = pip_install(venv, "--no-deps", "demo-pkg==1.0")
    assert hook("disable") == 0

    assert f"from {index.url}" in server.text  # the upstream the hook saved
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert is_installed(venv)
    assert f"served {WHEEL}: sha256 checked against index; {PUBLISHED_BY}" in server.text
    assert refused.returncode != 0
    assert "403 Client Error: secinstall refused it: demo_pkg-1.0-py3-none-any.whl does " \
           "not match the hash the index gives for it" in refused.stderr
    assert snapshot(venv.path) == before
    assert files_in(user_config.parent) == {"pip.conf": original}
