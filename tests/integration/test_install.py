"""`secinstall install` end to end: a real HTTPS index, real wheels, real virtual environments."""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from secinstall.resolve import SDIST_HINT
from tests.conftest import Venv, run_in
from tests.support.cli import Secinstall, dist_infos, pin, run_cli, sha256
from tests.support.index import LocalIndex
from tests.support.snapshot import snapshot
from tests.support.wheels import WheelMaker, build_sdist

CACHE_TAG = sys.implementation.cache_tag  # the test venvs are made from this interpreter

APP_FILES: dict[str, str | bytes] = {
    "app/__init__.py": 'import lib\n__version__ = "1.0"\n',
    "app/cli.py": (
        "import app, lib\n\n"
        "def main():\n"
        '    print(f"app {app.__version__} with lib {lib.__version__}")\n'
    ),
}


def record_of(dist_info: Path) -> dict[str, str]:
    """RECORD as {path: hash field}."""
    with (dist_info / "RECORD").open(newline="", encoding="utf-8") as f:
        return {row[0]: row[1] for row in csv.reader(f) if row}


def files_under(root: Path, *tops: str) -> set[str]:
    found = set()
    for top in tops:
        for path in (root / top).rglob("*"):
            if path.is_file():
                found.add(path.relative_to(root).as_posix())
    return found


@pytest.fixture
def app_and_lib(index: LocalIndex, make_wheel: WheelMaker) -> dict[str, Path]:
    """`app` 1.0 (requires lib>=1, has the console script `app-hello`), lib 1.0 and 2.0."""
    wheels = {
        "app": make_wheel("app", "1.0", files=APP_FILES, requires=["lib>=1"],
                          console_scripts={"app-hello": "app.cli:main"}),
        "lib1": make_wheel("lib", "1.0"),
        "lib2": make_wheel("lib", "2.0"),
    }
    for wheel in wheels.values():
        index.add(wheel)
    return wheels


# -- resolution and the installed result ------------------------------------------------------


def test_resolved_install_imports_runs_and_is_recorded(
    secinstall: Secinstall, venv: Venv, app_and_lib: dict[str, Path]
) -> None:
    run = secinstall("--python", venv.path, "app")

    assert run.code == 0, run.err
    assert "Installed: " in run.out
    imported = run_in(venv, "import app, lib; print(app.__version__, lib.__version__)")
    assert imported.stdout.split() == ["1.0", "2.0"], imported.stderr
    script = subprocess.run([str(venv.bin / "app-hello")], capture_output=True, text=True,
                            check=False)
    assert (script.returncode, script.stdout) == (0, "app 1.0 with lib 2.0\n"), script.stderr

    site = venv.purelib
    for name, version, requested in (("app", "1.0", True), ("lib", "2.0", False)):
        dist_info = site / f"{name}-{version}.dist-info"
        assert (dist_info / "INSTALLER").read_text() == "secinstall\n"
        assert (dist_info / "REQUESTED").exists() is requested
        record = record_of(dist_info)
        on_disk = files_under(site, name, dist_info.name)
        if name == "app":
            on_disk.add(os.path.relpath(venv.bin / "app-hello", site).replace(os.sep, "/"))
        assert set(record) == on_disk
        for path, field in record.items():
            if field:  # every hashed entry tells the truth about the installed file
                algo, _, digest = field.partition("=")
                actual = hashlib.new(algo, (site / path).read_bytes()).digest()
                assert base64.urlsafe_b64encode(actual).rstrip(b"=").decode() == digest, path
        pyc = f"{name}/__pycache__/__init__.{CACHE_TAG}.pyc"
        assert pyc in record
        assert (site / pyc).read_bytes()[:4] == importlib.util.MAGIC_NUMBER


@pytest.mark.parametrize("link_mode", ["hardlink", "copy"])
def test_metadata_with_the_same_bytes_is_written_once_and_linked(
    secinstall: Secinstall, venv: Venv, app_and_lib: dict[str, Path], link_mode: str,
) -> None:
    # Every wheel's INSTALLER holds the same bytes: one file, hard-linked (a new file costs
    # far more than a link on some filesystems), or copies with --link-mode copy.
    pinned = secinstall.pinned(app_and_lib["app"], app_and_lib["lib1"])
    assert secinstall("--python", venv.path, "--link-mode", link_mode, *pinned).code == 0
    app, lib = (venv.purelib / f"{n}-1.0.dist-info" / "INSTALLER" for n in ("app", "lib"))
    assert app.read_text() == lib.read_text() == "secinstall\n"
    assert os.path.samefile(app, lib) is (link_mode == "hardlink")

    # Replacing lib removes its INSTALLER, not the one app shares with it.
    run = secinstall("--python", venv.path, *secinstall.pinned(app_and_lib["lib2"]))

    assert run.code == 0, run.err
    assert app.read_text() == "secinstall\n"
    assert (venv.purelib / "lib-2.0.dist-info" / "INSTALLER").read_text() == "secinstall\n"


def test_no_compile_writes_no_bytecode(
    secinstall: Secinstall, venv: Venv, app_and_lib: dict[str, Path]
) -> None:
    reqs = secinstall.requirements(pin(app_and_lib["app"]), pin(app_and_lib["lib1"]))

    run = secinstall("--python", venv.path, "--no-compile", "-r", reqs)

    assert run.code == 0, run.err
    assert not list(venv.purelib.rglob("*.pyc"))
    for dist_info in ("app-1.0.dist-info", "lib-1.0.dist-info"):
        assert not [p for p in record_of(venv.purelib / dist_info) if p.endswith(".pyc")]
    assert run_in(venv, "import app").returncode == 0


def test_fully_pinned_input_runs_no_resolver(
    secinstall: Secinstall, venv: Venv, app_and_lib: dict[str, Path], tmp_path: Path
) -> None:
    reqs = secinstall.requirements(pin(app_and_lib["app"]), pin(app_and_lib["lib1"]))
    report = tmp_path / "report.json"

    run = secinstall("--python", venv.path, "-r", reqs, "--report", report)

    assert run.code == 0, run.err
    data = json.loads(report.read_text())
    assert data["secinstall"]["resolver"] == "pinned"
    assert {i["secinstall"]["filename"]: i["secinstall"]["hash_sources"]
            for i in data["install"]} == {
        app_and_lib["app"].name: ["index", "pin"], app_and_lib["lib1"].name: ["index", "pin"]}
    # The pin chose lib 1.0 although the index has 2.0, and 2.0 was never downloaded.
    assert run_in(venv, "import lib; print(lib.__version__)").stdout == "1.0\n"
    assert f"/files/{app_and_lib['lib2'].name}" not in secinstall.index.requests


def test_pinned_input_missing_a_dependency_pin_lists_it_ready_to_paste(
    secinstall: Secinstall, venv: Venv, app_and_lib: dict[str, Path]
) -> None:
    reqs = secinstall.requirements(pin(app_and_lib["app"]))
    before = snapshot(venv.path)

    run = secinstall("--python", venv.path, "-r", reqs)

    assert run.code == 1
    assert "Traceback" not in run.err
    # The line to add (the newest lib that fits), and what pulled lib in.
    line = next((ln for ln in run.err.splitlines() if pin(app_and_lib["lib2"]) in ln), "")
    assert "via app==1.0" in line, run.err
    assert snapshot(venv.path) == before


def test_require_hashes_flag_lists_every_missing_pin(
    secinstall: Secinstall, venv: Venv, app_and_lib: dict[str, Path]
) -> None:
    before = snapshot(venv.path)

    run = secinstall("--python", venv.path, "--require-hashes", "app")

    assert run.code == 1
    assert "Traceback" not in run.err
    lines = run.err.splitlines()
    app_line = next((ln for ln in lines if pin(app_and_lib["app"]) in ln), "")
    lib_line = next((ln for ln in lines if pin(app_and_lib["lib2"]) in ln), "")
    assert "requested" in app_line, run.err
    assert "via app==1.0" in lib_line, run.err
    assert snapshot(venv.path) == before


def test_one_hash_turns_on_hash_checking_for_the_rest(
    secinstall: Secinstall, venv: Venv, app_and_lib: dict[str, Path]
) -> None:
    reqs = secinstall.requirements(pin(app_and_lib["app"]), "lib>=1")
    before = snapshot(venv.path)

    run = secinstall("--python", venv.path, "-r", reqs)  # not fully pinned: pip resolves

    assert run.code == 1
    assert "Traceback" not in run.err
    missing = [ln.strip() for ln in run.err.splitlines() if "--hash=" in ln]
    assert len(missing) == 1, run.err
    assert missing[0].startswith(pin(app_and_lib["lib2"]))
    assert snapshot(venv.path) == before


# -- where to ----------------------------------------------------------------------------------


def _run_script(script: Path, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(pythonpath), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run([str(script)], capture_output=True, text=True, check=False, env=env)


def test_target_directory(
    secinstall: Secinstall, venv: Venv, app_and_lib: dict[str, Path], tmp_path: Path
) -> None:
    reqs = secinstall.requirements(pin(app_and_lib["app"]), pin(app_and_lib["lib1"]))
    target = tmp_path / "vendor"
    before = snapshot(venv.path)

    run = secinstall("--python", venv.python, "--target", target, "-r", reqs)

    assert run.code == 0, run.err
    assert (target / "app" / "cli.py").is_file()
    assert (target / "lib" / "__init__.py").is_file()
    assert dist_infos(target, "app") == ["app-1.0.dist-info"]
    script = _run_script(target / "bin" / "app-hello", target)
    assert script.stdout == "app 1.0 with lib 1.0\n", script.stderr
    assert snapshot(venv.path) == before  # nothing went into the interpreter's environment


def test_prefix(
    secinstall: Secinstall, venv: Venv, app_and_lib: dict[str, Path], tmp_path: Path
) -> None:
    reqs = secinstall.requirements(pin(app_and_lib["app"]), pin(app_and_lib["lib1"]))
    prefix = tmp_path / "prefix"

    run = secinstall("--python", venv.python, "--prefix", prefix, "-r", reqs)

    assert run.code == 0, run.err
    site = prefix / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    assert (site / "app" / "cli.py").is_file()
    assert dist_infos(site, "lib") == ["lib-1.0.dist-info"]
    script = _run_script(prefix / "bin" / "app-hello", site)
    assert script.stdout == "app 1.0 with lib 1.0\n", script.stderr
    assert not (venv.purelib / "app").exists()


def test_prefix_is_judged_at_the_prefix_and_leaves_the_environment_alone(
    secinstall: Secinstall, venv: Venv, lib_versions: dict[str, Path], tmp_path: Path
) -> None:
    # pip looks in the interpreter's environment: it skips there what the environment has
    # (the prefix then lacks it) and uninstalls from it another version of what it puts
    # in the prefix. secinstall changes nothing outside the prefix.
    assert secinstall("--python", venv.path, *secinstall.pinned(lib_versions["1.0"])).code == 0
    before = snapshot(venv.path)
    prefix = tmp_path / "prefix"
    site = prefix / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"

    for version in ("1.0", "2.0"):
        run = secinstall("--python", venv.path, "--prefix", prefix,
                         *secinstall.pinned(lib_versions[version]))
        assert run.code == 0, run.err
        assert dist_infos(site, "lib") == [f"lib-{version}.dist-info"]
    assert snapshot(venv.path) == before


@pytest.mark.parametrize("form", ["interpreter", "directory"])
def test_python_option_takes_interpreter_or_environment(
    secinstall: Secinstall, venv: Venv, make_wheel: WheelMaker, form: str
) -> None:
    wheel = make_wheel("lib", "1.0")
    secinstall.index.add(wheel)
    where = venv.python if form == "interpreter" else venv.path

    run = secinstall("--python", where, *secinstall.pinned(wheel))

    assert run.code == 0, run.err
    assert dist_infos(venv.purelib, "lib") == ["lib-1.0.dist-info"]
    assert run_in(venv, "import lib; print(lib.__version__)").stdout == "1.0\n"


# -- refusals ----------------------------------------------------------------------------------


def test_swapped_file_is_refused(
    secinstall: Secinstall, venv: Venv, make_wheel: WheelMaker
) -> None:
    good = make_wheel("lib", "1.0")
    evil = make_wheel("lib", "1.0", files={"lib/__init__.py": "print('pwned')\n"})
    secinstall.index.add(good, serve_bytes=evil.read_bytes())
    reqs = secinstall.requirements(pin(good))
    before = snapshot(venv.path)

    run = secinstall("--python", venv.path, "-r", reqs)

    assert run.code == 1
    assert "Traceback" not in run.err
    assert f"{good.name} does not match the hash" in run.err
    assert sha256(good) in run.err and sha256(evil) in run.err
    assert snapshot(venv.path) == before


def test_wrong_pin_is_refused(
    secinstall: Secinstall, venv: Venv, make_wheel: WheelMaker
) -> None:
    listed = make_wheel("lib", "1.0")
    other = make_wheel("lib", "1.0", files={"lib/__init__.py": "# another build\n"})
    secinstall.index.add(listed)
    reqs = secinstall.requirements(pin(other))
    before = snapshot(venv.path)

    run = secinstall("--python", venv.path, "-r", reqs)

    assert run.code == 1
    assert "Traceback" not in run.err
    assert "lib==1.0" in run.err and "matches the hashes pinned" in run.err
    assert sha256(other) in run.err  # what was pinned, next to what the index has
    assert snapshot(venv.path) == before


@pytest.mark.parametrize("resolver", ["pinned", "pip"])
def test_sdist_only_project_is_refused(
    secinstall: Secinstall, venv: Venv, tmp_path: Path, resolver: str
) -> None:
    sdist = build_sdist(tmp_path / "dist", "srconly", "1.0")
    secinstall.index.add(sdist)
    requirement = f"srconly==1.0 --hash=sha256:{sha256(sdist)}" if resolver == "pinned" \
        else "srconly"
    reqs = secinstall.requirements(requirement)
    before = snapshot(venv.path)

    run = secinstall("--python", venv.path, "-r", reqs)

    assert run.code == 1
    assert "Traceback" not in run.err
    assert "srconly" in run.err
    assert SDIST_HINT in run.err and "--allow-build" in run.err
    assert snapshot(venv.path) == before


@pytest.mark.parametrize("case", ["no such project", "no such version",
                                  "wheels for another platform"])
def test_resolver_finding_no_version_says_why(
    secinstall: Secinstall, venv: Venv, make_wheel: WheelMaker, case: str
) -> None:
    # pip says only "from versions: none"; secinstall asks the same indexes what is there.
    secinstall.index.add(make_wheel("lib", "1.0"))
    secinstall.index.add(make_wheel("lib", "1.1"))
    secinstall.index.add(make_wheel("native", "1.0", tag="cp27-cp27m-win32"))
    requirement, says = {
        "no such project": ("nosuch", f"no project named 'nosuch' is on {secinstall.index.url}"),
        "no such version": ("lib==2.0", "no version of lib==2.0 is available: the versions "
                            "with a wheel for this target are 1.0, 1.1"),
        "wheels for another platform": ("native", "none of the 1 wheel(s) of native fits "
                                        "the target (Python "),
    }[case]
    before = snapshot(venv.path)

    run = secinstall("--python", venv.path, requirement)

    assert run.code == 1
    assert f"error: {says}" in run.err
    assert "--allow-build" not in run.err  # no guess about source distributions
    assert snapshot(venv.path) == before


# -- upgrades, reinstalls, uninstall by RECORD ----------------------------------------------


@pytest.fixture
def lib_versions(index: LocalIndex, make_wheel: WheelMaker) -> dict[str, Path]:
    """lib 1.0 has a module `old` that 2.0 no longer has; 2.0 has a module `new`."""
    wheels = {
        "1.0": make_wheel("lib", "1.0", files={"lib/__init__.py": '__version__ = "1.0"\n'
                                                                  "def main(): pass\n",
                                               "lib/old.py": "OLD = True\n"},
                          console_scripts={"lib-tool": "lib:main"}),
        "2.0": make_wheel("lib", "2.0", files={"lib/__init__.py": '__version__ = "2.0"\n',
                                               "lib/new.py": "NEW = True\n"}),
    }
    for wheel in wheels.values():
        index.add(wheel)
    return wheels


def _assert_lib_2_replaced_1(venv: Venv) -> None:
    site = venv.purelib
    assert dist_infos(site, "lib") == ["lib-2.0.dist-info"]
    assert sorted(p.name for p in (site / "lib").iterdir()) == ["__init__.py", "__pycache__",
                                                              "new.py"]
    assert sorted(p.name for p in (site / "lib" / "__pycache__").iterdir()) == [
        f"__init__.{CACHE_TAG}.pyc", f"new.{CACHE_TAG}.pyc"]
    assert not (venv.bin / "lib-tool").exists()  # 1.0's script went with it
    assert run_in(venv, "import lib; print(lib.__version__)").stdout == "2.0\n"


def test_pinned_newer_version_replaces_old_by_record(
    secinstall: Secinstall, venv: Venv, lib_versions: dict[str, Path]
) -> None:
    assert secinstall("--python", venv.path, *secinstall.pinned(lib_versions["1.0"])).code == 0
    assert (venv.purelib / "lib" / "__pycache__" / f"old.{CACHE_TAG}.pyc").is_file()
    assert (venv.bin / "lib-tool").is_file()

    run = secinstall("--python", venv.path, *secinstall.pinned(lib_versions["2.0"]))

    assert run.code == 0, run.err
    assert "replaced lib 1.0" in run.out
    _assert_lib_2_replaced_1(venv)


def test_upgrade_flag_resolves_newest(
    secinstall: Secinstall, venv: Venv, lib_versions: dict[str, Path]
) -> None:
    assert secinstall("--python", venv.path, *secinstall.pinned(lib_versions["1.0"])).code == 0
    # Without -U pip keeps what satisfies the requirement.
    assert secinstall("--python", venv.path, "lib").code == 0
    assert dist_infos(venv.purelib, "lib") == ["lib-1.0.dist-info"]

    run = secinstall("--python", venv.path, "-U", "lib")

    assert run.code == 0, run.err
    _assert_lib_2_replaced_1(venv)


def test_force_reinstall_rewrites_same_version(
    secinstall: Secinstall, venv: Venv, lib_versions: dict[str, Path]
) -> None:
    assert secinstall("--python", venv.path, *secinstall.pinned(lib_versions["1.0"])).code == 0
    installed = snapshot(venv.path, ignore=_sbom)
    module = venv.purelib / "lib" / "old.py"
    module.write_text("OLD = 'tampered'\n")
    (venv.bin / "lib-tool").unlink()

    run = secinstall("--python", venv.path, "--force-reinstall",
                     *secinstall.pinned(lib_versions["1.0"]))

    assert run.code == 0, run.err
    assert module.read_text() == "OLD = True\n"
    # Bytecode records the source's mtime, so only its presence can be compared.
    now = snapshot(venv.path, ignore=_sbom)
    assert {k: v for k, v in now.items() if not k.endswith(".pyc")} == \
        {k: v for k, v in installed.items() if not k.endswith(".pyc")}
    assert set(now) == set(installed)


def _sbom(path: str) -> bool:
    """SBOM records, which every install that changes something adds to."""
    return path.startswith(".secinstall/sbom")


def test_same_pinned_version_again_changes_nothing(
    secinstall: Secinstall, venv: Venv, lib_versions: dict[str, Path]
) -> None:
    assert secinstall("--python", venv.path, *secinstall.pinned(lib_versions["1.0"])).code == 0
    installed = snapshot(venv.path)
    downloads = [r for r in secinstall.index.requests if r.startswith("/files/")]

    run = secinstall("--python", venv.path, *secinstall.pinned(lib_versions["1.0"]))

    assert run.code == 0, run.err
    assert "Already installed: lib 1.0" in run.out
    assert "Installed:" not in run.out
    assert snapshot(venv.path) == installed
    assert [r for r in secinstall.index.requests if r.startswith("/files/")] == downloads


# -- pip's configuration -----------------------------------------------------------------------


def test_pip_index_url_variable_is_honoured(
    secinstall: Secinstall, venv: Venv, make_wheel: WheelMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = make_wheel("lib", "1.0")
    secinstall.index.add(wheel)
    monkeypatch.setenv("PIP_INDEX_URL", secinstall.index.url)
    monkeypatch.setenv("PIP_CERT", str(secinstall.ca_file))

    run = secinstall("--python", venv.path, *secinstall.pinned(wheel), local=False)

    assert run.code == 0, run.err
    assert f"/files/{wheel.name}" in secinstall.index.requests
    assert dist_infos(venv.purelib, "lib") == ["lib-1.0.dist-info"]


def test_an_install_with_nothing_to_do_says_what_is_there(
    secinstall: Secinstall, venv: Venv, app_and_lib: dict[str, Path],
) -> None:
    # pip's report lists nothing already installed: said all the same, as pip does.
    assert secinstall("--python", venv.path, "app").code == 0

    again = secinstall("--python", venv.path, "app", "lib")

    assert again.code == 0, again.err
    assert again.out.splitlines()[-2:] == ["Already installed: app 1.0",
                                          "Already installed: lib 2.0"]


def test_pip_options_that_change_nothing_here_are_accepted(
    secinstall: Secinstall, venv: Venv, app_and_lib: dict[str, Path],
) -> None:
    # As CI scripts and Dockerfiles pass them to pip: `pip install` becomes
    # `secinstall install` without editing the rest of the line.
    run = secinstall("--python", venv.path, "--disable-pip-version-check", "--no-input",
                     "--no-color", "--no-python-version-warning", "--root-user-action=ignore",
                     "--no-warn-script-location", "--progress-bar", "off",
                     *secinstall.pinned(app_and_lib["lib1"]))

    assert run.code == 0, run.err
    assert run_in(venv, "import lib; print(lib.__version__)").stdout == "1.0\n"


@pytest.mark.parametrize("resolver", ["pinned", "pip"])
def test_pips_wheel_and_build_options_are_accepted_as_secinstall_takes_wheels_only(
    secinstall: Secinstall, venv: Venv, app_and_lib: dict[str, Path], resolver: str,
) -> None:
    wanted = secinstall.pinned(app_and_lib["lib1"]) if resolver == "pinned" else ("lib==1.0",)

    run = secinstall("--python", venv.path, "--only-binary", ":all:", "--prefer-binary",
                     "--no-binary", ":none:", "--no-build-isolation", "--use-pep517",
                     "--no-clean", "--exists-action", "w", "--src", "/nonexistent/src",
                     "-C", "key=value", "--config-settings=other=1",
                     "--use-feature=truststore", "--use-deprecated", "legacy-certs",
                     "--resume-retries", "3", "--keyring-provider", "disabled", *wanted)

    assert run.code == 0, run.err
    assert dist_infos(venv.purelib, "lib") == ["lib-1.0.dist-info"]


@pytest.mark.parametrize("flags", [(), ("--compile",), ("--no-compile",),
                                   ("--no-compile", "--compile"), ("--compile", "--no-compile")])
def test_compile_and_no_compile_last_wins(
    secinstall: Secinstall, venv: Venv, app_and_lib: dict[str, Path], flags: tuple[str, ...],
) -> None:
    run = secinstall("--python", venv.path, *flags, *secinstall.pinned(app_and_lib["lib1"]))

    assert run.code == 0, run.err
    compiled = bool(list((venv.purelib / "lib").glob("__pycache__/*.pyc")))
    assert compiled == (flags[-1:] != ("--no-compile",))


def test_keyring_credentials_are_refused_before_anything_happens(
    secinstall: Secinstall, venv: Venv,
) -> None:
    before = snapshot(venv.path)

    run = secinstall("--python", venv.path, "--keyring-provider", "subprocess", "lib")

    assert run.code == 1
    assert ("error: --keyring-provider subprocess: secinstall doesn't read credentials from "
            "keyring; give them in the index URL") in run.err
    assert snapshot(venv.path) == before


@pytest.mark.parametrize("value", [":all:", "lib", "other,lib", "-e"])
def test_no_binary_and_editable_are_refused_as_builds(
    secinstall: Secinstall, venv: Venv, app_and_lib: dict[str, Path], value: str,
    tmp_path: Path,
) -> None:
    before = snapshot(venv.path)
    args = ("-e", str(tmp_path)) if value == "-e" else ("--no-binary", value, "lib")

    run = secinstall("--python", venv.path, *args)

    assert run.code == 1
    assert (f"error: -e {tmp_path} asks for an editable install" if value == "-e" else
            f"error: --no-binary {','.join(sorted(value.split(',')))} asks for source "
            "builds") in run.err
    assert "--allow-build" in run.err
    assert snapshot(venv.path) == before
    assert not [r for r in secinstall.index.requests if r.startswith("/files/")]


@pytest.mark.parametrize("resolver", ["pinned", "pip"])
def test_ignore_installed_reinstalls_what_is_there(
    secinstall: Secinstall, venv: Venv, app_and_lib: dict[str, Path], resolver: str,
) -> None:
    assert secinstall("--python", venv.path, *secinstall.pinned(app_and_lib["lib1"])).code == 0
    module = venv.purelib / "lib" / "__init__.py"
    module.write_text("tampered = True\n")
    wanted = secinstall.pinned(app_and_lib["lib1"]) if resolver == "pinned" else ("lib==1.0",)

    run = secinstall("--python", venv.path, "-I", *wanted)

    assert run.code == 0, run.err
    assert "Installed: lib 1.0 (replaced lib 1.0)" in run.out
    assert "tampered" not in module.read_text()
    assert dist_infos(venv.purelib, "lib") == ["lib-1.0.dist-info"]


@pytest.mark.parametrize(("strategy", "lib"), [((), "1.0"), (("--upgrade-strategy", "eager"),
                                                             "2.0")])
def test_upgrade_strategy_goes_to_pips_resolver(
    secinstall: Secinstall, venv: Venv, app_and_lib: dict[str, Path],
    strategy: tuple[str, ...], lib: str,
) -> None:
    assert secinstall("--python", venv.path, *secinstall.pinned(app_and_lib["app"],
                                                               app_and_lib["lib1"])).code == 0

    run = secinstall("--python", venv.path, "-U", *strategy, "app")

    assert run.code == 0, run.err
    assert dist_infos(venv.purelib, "lib") == [f"lib-{lib}.dist-info"]


def test_log_appends_every_message_with_its_time(
    secinstall: Secinstall, venv: Venv, app_and_lib: dict[str, Path], tmp_path: Path,
) -> None:
    # pip's --log: a verbose log, appended, whatever -q says; an index token redacted.
    log = tmp_path / "install.log"
    index = secinstall.index.url.replace("https://", "https://user:s3cret@")

    run = secinstall("--python", venv.path, "-q", "--log", log, "--index-url", index,
                     *secinstall.pinned(app_and_lib["lib1"]))
    again = secinstall("--python", venv.path, "--log", log, "nosuch")

    assert run.code == 0, run.err
    assert run.out == ""
    assert again.code == 1
    lines = log.read_text().splitlines()
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d "
    assert all(re.match(stamp, line) for line in lines), lines
    text = "\n".join(lines)
    assert "s3cret" not in text
    assert "--index-url https://****@127.0.0.1" in text
    assert "Installed: lib 1.0" in text
    assert f"target: {venv.python}" in text  # -v's messages too
    assert "exit code 0" in text and "exit code 1" in text
    assert "error: no project named 'nosuch'" in text


def test_pips_configuration_sets_the_log_and_the_verbosity(
    secinstall: Secinstall, venv: Venv, app_and_lib: dict[str, Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As in pip: PIP_LOG (or `log`, `log-file` in pip.conf) is --log; the -v and -q
    # given add to PIP_VERBOSE and PIP_QUIET.
    log = tmp_path / "pip-config.log"
    monkeypatch.setenv("PIP_LOG", str(log))
    monkeypatch.setenv("PIP_QUIET", "1")

    quiet = secinstall("--python", venv.path, *secinstall.pinned(app_and_lib["lib1"]))
    as_usual = secinstall("--python", venv.path, "-v", *secinstall.pinned(app_and_lib["lib1"]))

    assert quiet.code == as_usual.code == 0, quiet.err
    assert quiet.out == ""
    assert "Installed: lib 1.0" in log.read_text()
    assert "Already installed: lib 1.0" in as_usual.out
    assert "target: " not in as_usual.out + as_usual.err  # -v's message: 1 - 1 = 0
    monkeypatch.setenv("PIP_VERBOSE", "2")
    verbose = secinstall("--python", venv.path, *secinstall.pinned(app_and_lib["lib1"]))
    assert "target: " in verbose.out + verbose.err
    monkeypatch.setenv("PIP_QUIET", "lots")
    before = snapshot(venv.path)
    refused = secinstall("--python", venv.path, *secinstall.pinned(app_and_lib["lib2"]))
    assert refused.code == 1
    assert "environment PIP_QUIET: quiet = 'lots' is not" in refused.err
    assert snapshot(venv.path) == before


#: A colour in a terminal's control sequences (SGR 30-38 or 90-97: foreground).
COLOUR = re.compile(rb"\x1b\[(?:[0-9;]*;)?(?:3[0-8]|9[0-7])[;m]")


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
@pytest.mark.parametrize(("flags", "config", "bar", "colour"), [
    ((), {}, True, True),
    (("--progress-bar", "off"), {}, False, False),
    (("--no-color",), {}, True, False),
    ((), {"PIP_PROGRESS_BAR": "off"}, False, False),  # pip's configuration
    ((), {"PIP_NO_COLOR": "yes"}, True, False),
], ids=["on", "off", "no-color", "off-by-config", "no-color-by-config"])
def test_a_terminal_gets_a_progress_bar_unless_it_is_off(
    index: LocalIndex, ca_file: Path, venv: Venv, app_and_lib: dict[str, Path],
    tmp_path: Path, flags: tuple[str, ...], config: dict[str, str], bar: bool, colour: bool,
) -> None:
    master, terminal = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "secinstall", "install", "--python", str(venv.path),
         "--index-url", index.url, "--cert", str(ca_file), "--cache-dir",
         str(tmp_path / "cache"), *flags, "lib==2.0"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=terminal,
        env={**os.environ, "TERM": "xterm-256color", **config})
    os.close(terminal)
    shown = b""
    with contextlib.suppress(OSError):  # EIO once the process has closed its end
        while chunk := os.read(master, 65536):
            shown += chunk
    os.close(master)

    assert proc.wait(timeout=120) == 0, shown
    # rich draws (and, being transient, erases) the bar with terminal control sequences.
    assert (b"\x1b[" in shown) == bar, shown
    assert bool(COLOUR.search(shown)) == colour, shown


def test_pips_resolver_reads_no_configuration_of_its_own(
    secinstall: Secinstall, venv: Venv, app_and_lib: dict[str, Path], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The machine's pip configuration (here XDG_CONFIG_DIRS/pip/pip.conf, as /etc/xdg/pip
    # is) is a file --isolated still reads; with PIP_CONFIG_FILE=/dev/null, secinstall reads
    # none, and pip's plan must not follow another configuration than secinstall's.
    machine = tmp_path / "xdg"
    (machine / "pip").mkdir(parents=True)
    (tmp_path / "cap.txt").write_text("lib<2\n", encoding="utf-8")
    (machine / "pip" / "pip.conf").write_text(
        f"[global]\nconstraint = {tmp_path / 'cap.txt'}\n", encoding="utf-8")
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(machine))
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)

    run = secinstall("--python", venv.path, "app")

    assert run.code == 0, run.err
    assert run_in(venv, "import lib; print(lib.__version__)").stdout == "2.0\n"


def test_isolated_ignores_pip_variables(
    secinstall: Secinstall, venv: Venv, make_wheel: WheelMaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = make_wheel("lib", "1.0")
    secinstall.index.add(wheel)
    monkeypatch.setenv("PIP_INDEX_URL", secinstall.index.url)
    before = snapshot(venv.path)

    # A proxy that refuses connections keeps this offline: we only need to see which
    # index was asked.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    run = secinstall("--python", venv.path, "--isolated", "--cert", secinstall.ca_file,
                     "--proxy", f"http://127.0.0.1:{closed_port}", "--retries", "0",
                     *secinstall.pinned(wheel), local=False)

    assert run.code == 1
    assert "https://pypi.org/simple/lib/" in run.err
    assert "Traceback" not in run.err
    assert secinstall.index.requests == []
    assert snapshot(venv.path) == before


@pytest.mark.parametrize("quiet", [None, "--no-warn-script-location",
                                   "PIP_NO_WARN_SCRIPT_LOCATION"])
def test_scripts_off_path_are_said_as_pip_says_them(
    secinstall: Secinstall, make_wheel: WheelMaker, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, quiet: str | None,
) -> None:
    # --target puts scripts in DIR/bin, which PATH doesn't name: their commands won't be
    # found, which pip says (pip's setting keeps its value as given: "no" turns it off).
    wheel = make_wheel("tool", "1.0", files={"tool.py": "def main():\n    pass\n"},
                       console_scripts={"tool": "tool:main"})
    secinstall.index.add(wheel)
    args: tuple[str, ...] = ()
    if quiet == "PIP_NO_WARN_SCRIPT_LOCATION":
        monkeypatch.setenv(quiet, "no")
    elif quiet:
        args = (quiet,)
    run = secinstall("--target", tmp_path / "t", *args, *secinstall.pinned(wheel))

    assert run.code == 0, run.err
    assert (tmp_path / "t" / "bin" / "tool").is_file()
    said = (f"warning: The script tool is installed in '{tmp_path / 't' / 'bin'}' which is "
            "not on PATH.\nConsider adding this directory to PATH")
    assert (said in run.err) is (quiet is None)


def test_scripts_by_the_environments_python_are_not_said(
    secinstall: Secinstall, venv: Venv, make_wheel: WheelMaker,
) -> None:
    # A virtual environment used without activating it: nothing to say.
    wheel = make_wheel("tool", "1.0", files={"tool.py": "def main():\n    pass\n"},
                       console_scripts={"tool": "tool:main"})
    secinstall.index.add(wheel)
    run = secinstall("--python", venv.path, *secinstall.pinned(wheel))
    assert run.code == 0, run.err
    assert (venv.bin / "tool").is_file()
    assert "not on PATH" not in run.err


@pytest.mark.parametrize("form", ["directory", "file"])
def test_a_legacy_egg_info_counts_as_installed_and_is_never_overwritten(
    secinstall: Secinstall, venv: Venv, lib_versions: dict[str, Path], form: str,
) -> None:
    # As setup.py install (a directory) or distutils (a file) left it: no RECORD, so its
    # files aren't known. pip counts it as installed; replacing it would write over its
    # files and leave two records of one project.
    pkg_info = "Metadata-Version: 1.1\nName: lib\nVersion: 1.0\n"
    legacy = venv.purelib / "lib-1.0-py3.11.egg-info"
    if form == "directory":
        legacy.mkdir()
        (legacy / "PKG-INFO").write_text(pkg_info)
    else:
        legacy.write_text(pkg_info)
    (venv.purelib / "lib").mkdir()
    (venv.purelib / "lib" / "__init__.py").write_text("LEGACY = True\n")
    before = snapshot(venv.path)

    same = secinstall("--python", venv.path, *secinstall.pinned(lib_versions["1.0"]))
    other = secinstall("--python", venv.path, *secinstall.pinned(lib_versions["2.0"]))
    gone = run_cli(secinstall.index, secinstall.ca_file, secinstall.tmp, secinstall.capsys,
                   ["uninstall", "--python", str(venv.path), "lib"], local=False)

    assert same.code == 0, same.err
    assert "Already installed: lib 1.0" in same.out
    assert other.code == 1
    assert "installed by setup.py or an old pip" in other.err
    assert "every change was rolled back" in other.err
    assert gone.code == 1 and "Nothing was uninstalled" in gone.err
    # Not a file changed but secinstall's own lock, taken to try.
    after = snapshot(venv.path)
    assert {k: v for k, v in after.items() if not k.startswith(".secinstall")} == before


def test_a_venv_seeing_the_systems_site_packages_counts_what_they_hold(
    secinstall: Secinstall, make_wheel: WheelMaker, tmp_path: Path,
) -> None:
    # pyvenv.cfg's include-system-site-packages: pip counts the base interpreter's
    # distributions as installed (the venv's own would shadow them). pip is one every
    # base here has; a wheel of its version stands for it on the index.
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    version = subprocess.run([str(base), "-c", "import importlib.metadata as m; "
                              "print(m.version('pip'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    wheel = make_wheel("pip", version)
    secinstall.index.add(wheel)
    venv = tmp_path / "venv"
    subprocess.run([str(base), "-m", "venv", "--without-pip", "--system-site-packages",
                    str(venv)], check=True)

    run = secinstall("--python", venv, *secinstall.pinned(wheel))

    assert run.code == 0, run.err
    assert f"Already installed: pip {version}" in run.out
    assert not list(venv.glob("lib/python*/site-packages/pip-*.dist-info"))


@pytest.mark.parametrize("pinned", [True, False], ids=["pinned", "resolved"])
def test_a_requirement_whose_markers_dont_hold_is_said_to_be_ignored(
    secinstall: Secinstall, venv: Venv, lib_versions: dict[str, Path], pinned: bool,
) -> None:
    # As pip says it (otherwise "Nothing to install" leaves the user guessing why).
    line = pin(lib_versions["1.0"]) if pinned else "lib==1.0"
    name_version, _, hashes = line.partition(" ")
    reqs = secinstall.requirements(f'{name_version} ; python_version < "3" {hashes}'.strip())

    run = secinstall("--python", venv.path, "-r", reqs)

    assert run.code == 0, run.err
    assert "Ignoring lib: markers 'python_version < \"3\"' don't match your environment" in run.out
    assert dist_infos(venv.purelib, "lib") == []
