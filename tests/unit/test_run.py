"""Tests of secinstall.run's environment for the command: what of pip's configuration it
keeps, in pip's order, and what it never gets."""

from __future__ import annotations

import os
from pathlib import Path

from tests.support.files import write

from secinstall.run import child_environment

URL = "http://127.0.0.1:8740/simple/"


def test_the_commands_pip_gets_its_settings_in_pips_order(tmp_path: Path) -> None:
    config = write(tmp_path / "pip.conf",
                   "[global]\ntimeout = 10\nretries = 3\nindex-url = https://elsewhere/\n"
                   "[install]\ntimeout = 20\nno-deps = yes\nfind-links = /wheels\n"
                   "[download]\ntimeout = 30\n")
    environ = {"PIP_CONFIG_FILE": str(config), "PIP_RETRIES": "7", "HOME": str(tmp_path)}

    install = child_environment(environ, URL, command=["pip", "install", "x"])
    download = child_environment(environ, URL, command=["python", "-m", "pip", "download"])
    other = child_environment(environ, URL, command=["python", "-m", "build"])

    # [install] over [global] for `pip install`, the user's own variables over both...
    assert (install["PIP_TIMEOUT"], install["PIP_RETRIES"], install["PIP_NO_DEPS"]) == (
        "20", "7", "yes")
    assert (download["PIP_TIMEOUT"], "PIP_NO_DEPS" in download) == ("30", False)
    assert (other["PIP_TIMEOUT"], "PIP_NO_DEPS" in other) == ("10", False)
    # ... and never another source than the verifying index, nor a configuration file.
    for env in (install, download, other):
        assert env["PIP_INDEX_URL"] == URL and env["PIP_CONFIG_FILE"] == os.devnull
        assert "PIP_FIND_LINKS" not in env


def test_no_configuration_file_no_settings(tmp_path: Path) -> None:
    # PIP_CONFIG_FILE=/dev/null: the user asked for none.
    write(tmp_path / ".config" / "pip" / "pip.conf", "[global]\ntimeout = 10\n")
    env = child_environment({"PIP_CONFIG_FILE": os.devnull, "HOME": str(tmp_path)}, URL,
                            command=["pip", "install"])

    assert "PIP_TIMEOUT" not in env
