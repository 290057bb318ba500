"""pip's warning about scripts installed where PATH doesn't look (`scripts_off_path`)."""

from __future__ import annotations

from pathlib import Path

from secinstall.install import scripts_off_path

HINT = ("Consider adding {} to PATH or, if you prefer to suppress this warning, use "
        "--no-warn-script-location.")


def test_one_directory_off_path_in_pips_words() -> None:
    said = scripts_off_path(["/home/u/.local/bin/black", "/home/u/.local/bin/blackd"],
                            Path("/usr/bin"), {"PATH": "/usr/local/bin:/usr/bin"})
    assert said == ("The scripts black and blackd are installed in '/home/u/.local/bin' "
                    "which is not on PATH.\n" + HINT.format("this directory"))


def test_several_directories_and_a_tilde_in_path() -> None:
    said = scripts_off_path(["/a/bin/one", "/b/bin/x", "/b/bin/y", "/b/bin/z"], Path("/usr/bin"),
                            {"PATH": "~/bin:/usr/bin"})
    assert said == ("The script one is installed in '/a/bin' which is not on PATH.\n"
                    "The scripts x, y and z are installed in '/b/bin' which is not on PATH.\n"
                    + HINT.format("these directories") + "\nNOTE: The current PATH contains "
                    "path(s) starting with `~`, which may not be expanded by all applications.")


def test_nothing_said_for_path_or_the_interpreters_own_directory() -> None:
    # A virtual environment used without activating it: its scripts sit by its python.
    env = {"PATH": "/usr/bin:/home/u/.local/bin/"}
    assert scripts_off_path(["/home/u/.local/bin/black"], Path("/usr/bin"), env) is None
    assert scripts_off_path(["/venv/bin/black"], Path("/venv/bin"), env) is None
    assert scripts_off_path([], Path("/venv/bin"), env) is None
