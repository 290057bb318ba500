"""get-secinstall.py end to end: built from this checkout, run by a bare interpreter in a
fresh venv without pip, installing from a real HTTPS index; and vendor/ checked as it is.

The script's pins (vendor/vendor.txt for --core-only, requirements/runtime.txt by
default) name PyPI's wheels. The offline tests build the same script with pins of wheels
repacked from vendor/ (same files, other bytes) and of a stand-in runtime dependency,
which the local index serves; the tests marked `network` install the real pins, from PyPI
or from PyPI's wheels served by the local index.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from secinstall import __version__
from secinstall._bootstrap_template import forwarded, split_requirements
from secinstall.bootstrap import (
    ZIP_DATE,
    VendoredDist,
    bom_json,
    build_script,
    check_vendored,
    read_pins,
    read_runtime_pins,
    unpinned_dependencies,
    vendor,
)
from secinstall.errors import ConfigError, VerificationError
from secinstall.requirements import parse_files
from tests.conftest import Venv
from tests.support import faults
from tests.support.index import LocalIndex
from tests.support.interrupt import interrupt_when_requested
from tests.support.pep740 import WHEEL, fixtures_dir, serve_real_wheel
from tests.support.snapshot import snapshot
from tests.support.system_python import SystemPython, assert_refused
from tests.support.wheels import WheelMaker, build_wheel

ROOT = Path(__file__).parents[2]
VENDOR = ROOT / "vendor"
RUNTIME_TXT = ROOT / "requirements" / "runtime.txt"
#: A real wheel with its real PEP 740 provenance beside it.
ATTESTED = fixtures_dir() / WHEEL
CORE = {"installer", "packaging", "truststore", "urllib3"} | (
    {"tomli"} if sys.version_info < (3, 11) else set())


@dataclass(frozen=True)
class Repacked:
    """A vendored distribution packed again into a wheel: the same files, other bytes."""

    path: Path
    sha256: str
    line: str


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _repack(dist: VendoredDist, dest: Path) -> Repacked:
    path = dest / dist.filename
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for rel in dist.files:
            archive.writestr(rel, (VENDOR / rel).read_bytes())
    digest = _sha256(path.read_bytes())
    requirement = dist.pin.line.rsplit(" --hash=", 1)[0]  # with its marker, if any
    return Repacked(path, digest, f"{requirement} --hash=sha256:{digest}")


@pytest.fixture(scope="session")
def repacked(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Repacked]:
    dest = tmp_path_factory.mktemp("repacked")
    return {d.pin.name: _repack(d, dest) for d in check_vendored(VENDOR)}


@pytest.fixture(scope="session")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Repacked:
    """A wheel only the stand-in runtime pins name: what the default mode adds."""
    path = build_wheel(tmp_path_factory.mktemp("standin"), "standin", "1.0")
    digest = _sha256(path.read_bytes())
    return Repacked(path, digest, f"standin==1.0 --hash=sha256:{digest}")


@pytest.fixture(scope="session")
def script(tmp_path_factory: pytest.TempPathFactory, repacked: dict[str, Repacked],
           standin: Repacked) -> Path:
    """get-secinstall.py from this checkout, with the repacked wheels' pins as its core,
    and those and the stand-in's, written as `nox -s lock` writes them, as its runtime
    pins (which can't be complete offline: secinstall needs sigstore, pip, ...)."""
    path = tmp_path_factory.mktemp("script") / "get-secinstall.py"
    core = "".join(f"{r.line}\n" for r in repacked.values())
    continued = " \\\n    --hash="
    runtime = "# a stand-in for requirements/runtime.txt\n" + "".join(
        r.line.replace(" --hash=", continued) + "\n    # via secinstall\n"
        for r in (*repacked.values(), standin))
    path.write_bytes(build_script(ROOT, core_pins=core, runtime_pins=runtime))
    return path


def run(python: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run `python ARGS` as a user would: PYTHONPATH dropped, so only what is installed
    in python's environment (or what the script embeds) is importable."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run([str(python), *map(str, args)], capture_output=True, text=True,
                          env=env, check=False, timeout=300)


def installed(venv: Venv) -> set[str]:
    return {canonicalize_name(p.name.partition("-")[0])
            for p in venv.purelib.glob("*.dist-info")}


def index_options(index: LocalIndex, ca_file: Path, cache: Path) -> list[str]:
    return ["--index-url", index.url, "--cert", str(ca_file), "--cache-dir", str(cache)]


# --- installing ------------------------------------------------------------------------------


def bootstrap_core(venv: Venv, index: LocalIndex, ca_file: Path, script: Path,
                   repacked: dict[str, Repacked], cache: Path) -> subprocess.CompletedProcess[str]:
    """Run the script with --core-only: secinstall and its core into `venv`."""
    for r in repacked.values():
        index.add(r.path)
    result = run(venv.python, script, "--core-only", *index_options(index, ca_file, cache))
    assert result.returncode == 0, result.stderr
    assert installed(venv) == {"secinstall", *CORE}
    return result


def test_installs_secinstall_and_its_core_in_a_venv_without_pip(
    venv: Venv, index: LocalIndex, ca_file: Path, script: Path,
    repacked: dict[str, Repacked], make_wheel: WheelMaker, tmp_path: Path,
) -> None:
    result = bootstrap_core(venv, index, ca_file, script, repacked, tmp_path / "cache")
    assert "verification weakened: attestations not checked" in result.stderr
    assert "installed with its core dependencies only (--core-only)" in result.stderr
    version = run(venv.python, "-m", "secinstall", "--version")
    assert version.stdout.strip() == f"secinstall {__version__}", version.stderr
    # The core is enough for the pinned install path, with no heavy dependency installed.
    demo = make_wheel("demo", "1.0")
    index.add(demo)
    reqs = tmp_path / "reqs.txt"
    reqs.write_text(f"demo==1.0 --hash=sha256:{_sha256(demo.read_bytes())}\n")
    second = run(venv.python, "-m", "secinstall", "install", "-r", reqs,
                 *index_options(index, ca_file, tmp_path / "cache"))
    assert second.returncode == 0, second.stderr
    assert "demo" in installed(venv)
    assert "no SBOM fragment was written for this install: cyclonedx-python-lib" in second.stderr


def test_the_installed_core_refuses_provenance_it_cannot_verify(
    venv: Venv, index: LocalIndex, ca_file: Path, script: Path,
    repacked: dict[str, Repacked], make_wheel: WheelMaker, tmp_path: Path,
) -> None:
    """Without sigstore and pypi-attestations, a file with PEP 740 provenance is refused
    (fail closed), with a message, not a traceback."""
    bootstrap_core(venv, index, ca_file, script, repacked, tmp_path / "cache")
    demo = make_wheel("demo", "1.0")
    index.add(demo, provenance=b"{}")
    reqs = tmp_path / "reqs.txt"
    reqs.write_text(f"demo==1.0 --hash=sha256:{_sha256(demo.read_bytes())}\n")
    before = snapshot(venv.path)
    result = run(venv.python, "-m", "secinstall", "install", "-r", reqs,
                 *index_options(index, ca_file, tmp_path / "cache"))
    assert result.returncode == 1
    assert "has PEP 740 provenance, but it can't be verified" in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(venv.path) == before


def test_by_default_installs_the_runtime_pins_not_only_the_core(
    venv: Venv, index: LocalIndex, ca_file: Path, script: Path,
    repacked: dict[str, Repacked], standin: Repacked, tmp_path: Path,
) -> None:
    """RUNTIME_PINS, not CORE_PINS: the stand-in is installed. (--no-deps only because
    the stand-in pins can't be complete offline; the next test shows the default checks.)"""
    for r in (*repacked.values(), standin):
        index.add(r.path)
    result = run(venv.python, script, "--no-deps",
                 *index_options(index, ca_file, tmp_path / "cache"))
    assert result.returncode == 0, result.stderr
    assert installed(venv) == {"secinstall", "standin", *CORE}
    # Staged first, then installed by the staged secinstall with attestations on.
    assert "Staging the verifier" in result.stderr
    assert "attestations not checked" not in result.stderr
    assert "have no PEP 740 provenance" in result.stderr
    assert "installed with all its runtime dependencies (RUNTIME_PINS)" in result.stderr


def test_by_default_attestations_are_checked_by_the_staged_secinstall(
    venv: Venv, index: LocalIndex, ca_file: Path, script: Path,
    repacked: dict[str, Repacked], standin: Repacked, tmp_path: Path,
) -> None:
    """A runtime pin whose file has PEP 740 provenance: the secinstall staged from the
    pins checks it (this stand-in stage has no sigstore, so it refuses: fail closed; the
    real pins stage sigstore). One install with --attestations off took it unchecked."""
    for r in repacked.values():
        index.add(r.path)
    index.add(standin.path, provenance=b"{}")
    before = snapshot(venv.path)
    result = run(venv.python, script, "--no-deps", "--no-cache-dir",
                 *index_options(index, ca_file, tmp_path / "cache")[:-2])
    assert result.returncode == 1
    assert "has PEP 740 provenance, but it can't be verified" in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(venv.path) == before
    # --no-cache-dir: the two phases share one temporary cache, so one download a file.
    downloads = [r for r in index.requests if r.startswith("/files/")]
    assert sorted(downloads) == sorted(set(downloads))


def test_by_default_the_runtime_pins_must_be_complete(
    venv: Venv, index: LocalIndex, ca_file: Path, script: Path,
    repacked: dict[str, Repacked], standin: Repacked, tmp_path: Path,
) -> None:
    """The default mode checks that every dependency of secinstall is pinned (no
    --no-deps): the stand-in pins lack sigstore, pip, ..., so nothing is installed."""
    for r in (*repacked.values(), standin):
        index.add(r.path)
    before = snapshot(venv.path)
    result = run(venv.python, script, *index_options(index, ca_file, tmp_path / "cache"))
    assert result.returncode == 1
    assert "the pinned requirements are incomplete" in result.stderr
    assert "sigstore" in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(venv.path) == before


@pytest.mark.parametrize("mode", ["--core-only", "--no-deps"], ids=["core-only", "two-phases"])
def test_an_externally_managed_python_is_refused_unless_break_system_packages(
    managed: SystemPython, index: LocalIndex, ca_file: Path, script: Path,
    repacked: dict[str, Repacked], standin: Repacked, tmp_path: Path, mode: str,
) -> None:
    """As get-pip.py (pip) does, PEP 668: the script installs into the interpreter that
    runs it, here an externally managed one (the stage, in a temporary directory, is not
    concerned)."""
    for r in (*repacked.values(), standin):
        index.add(r.path)
    options = index_options(index, ca_file, tmp_path / "cache")
    before = snapshot(managed.prefix)

    refused = run(managed.python, script, mode, *options)

    assert_refused(refused.returncode, refused.stderr, managed)
    assert snapshot(managed.prefix) == before
    # Refused first: nothing staged, nothing downloaded for a stage.
    assert "Staging the verifier" not in refused.stderr
    assert not [r for r in index.requests if r.startswith("/files/")]

    result = run(managed.python, script, mode, "--break-system-packages", *options)

    assert result.returncode == 0, result.stderr
    assert "verification weakened: installing into an externally managed environment " \
           f"despite its PEP 668 marker {managed.marker}" in result.stderr
    assert {canonicalize_name(p.name.partition("-")[0])
            for p in managed.purelib.glob("*.dist-info")} == {
        "secinstall", *CORE, *(() if mode == "--core-only" else ("standin",))}
    version = run(managed.python, "-m", "secinstall", "--version")
    assert version.stdout.strip() == f"secinstall {__version__}", version.stderr


#: The stand-in runtime pins can't be complete offline: staging them needs --no-deps.
STAND_IN_STAGE = ["--no-deps"]


@pytest.mark.parametrize("attestations", [[], ["--attestations", "off"]],
                         ids=["staged-verifier", "attestations-off"])
@pytest.mark.parametrize("how", ["arguments", "requirements-file"])
def test_installs_pinned_requirements_only(
    how: str, attestations: list[str], venv: Venv, index: LocalIndex, ca_file: Path,
    script: Path, repacked: dict[str, Repacked], standin: Repacked, make_wheel: WheelMaker,
    tmp_path: Path,
) -> None:
    """Only the requirements are installed; by default attestations are checked by a
    secinstall staged first (which leaves nothing behind), or not at all when asked."""
    for r in (*repacked.values(), standin):
        index.add(r.path)
    demo = make_wheel("demo", "1.0")
    index.add(demo)
    pin = ["demo==1.0", f"--hash=sha256:{_sha256(demo.read_bytes())}"]
    if how == "requirements-file":
        reqs = tmp_path / "reqs.txt"
        reqs.write_text(" ".join(pin) + "\n")
        pin = ["-r", str(reqs)]
    result = run(venv.python, script, *pin, *attestations, *STAND_IN_STAGE,
                 *index_options(index, ca_file, tmp_path / "c"))
    assert result.returncode == 0, result.stderr
    assert installed(venv) == {"demo"}
    assert "was installed with" not in result.stderr
    if attestations:
        assert "Staging the verifier" not in result.stderr
        assert "verification weakened: attestations not checked" in result.stderr
    else:
        assert "Staging the verifier" in result.stderr
        assert "attestations not checked" not in result.stderr
        assert "have no PEP 740 provenance" in result.stderr


def test_a_pinned_requirement_with_provenance_is_checked_by_the_staged_secinstall(
    venv: Venv, index: LocalIndex, ca_file: Path, script: Path,
    repacked: dict[str, Repacked], standin: Repacked, make_wheel: WheelMaker,
    tmp_path: Path,
) -> None:
    """The staged secinstall checks the requirement's provenance (this stand-in stage
    has no sigstore: it refuses, fail closed); --attestations off takes it unchecked."""
    for r in (*repacked.values(), standin):
        index.add(r.path)
    demo = make_wheel("demo", "1.0")
    index.add(demo, provenance=b"{}")
    pin = ["demo==1.0", f"--hash=sha256:{_sha256(demo.read_bytes())}"]
    before = snapshot(venv.path)
    options = [*STAND_IN_STAGE, *index_options(index, ca_file, tmp_path / "c")]

    refused = run(venv.python, script, *pin, *options)
    assert refused.returncode == 1
    assert "has PEP 740 provenance, but it can't be verified" in refused.stderr
    assert snapshot(venv.path) == before

    unchecked = run(venv.python, script, *pin, "--attestations", "off", *options)
    assert unchecked.returncode == 0, unchecked.stderr
    assert "verification weakened: attestations not checked" in unchecked.stderr
    assert installed(venv) == {"demo"}


# --- refusals --------------------------------------------------------------------------------


def _other_bytes(wheel: Path) -> bytes:
    """A valid wheel of the same name and files whose bytes differ."""
    out = io.BytesIO()
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    return out.getvalue()


@pytest.mark.parametrize("mode", [["--core-only"], []], ids=["core-only", "default"])
@pytest.mark.parametrize("swap", ["download", "listing"])
def test_a_swapped_core_or_runtime_wheel_is_refused(
    swap: str, mode: list[str], venv: Venv, index: LocalIndex, ca_file: Path, script: Path,
    repacked: dict[str, Repacked], standin: Repacked, tmp_path: Path,
) -> None:
    """The index serves other bytes for packaging than the script pins (in CORE_PINS, or
    in RUNTIME_PINS by default): while claiming the pinned hash ("download"), or listing
    their real hash ("listing")."""
    index.add(standin.path)
    for name, r in repacked.items():
        if name != "packaging":
            index.add(r.path)
    packaging = repacked["packaging"].path
    other = _other_bytes(packaging)
    if swap == "download":
        index.add(packaging, serve_bytes=other)
    else:
        swapped = tmp_path / "swapped" / packaging.name
        swapped.parent.mkdir()
        swapped.write_bytes(other)
        index.add(swapped)
    before = snapshot(venv.path)
    result = run(venv.python, script, *mode, *index_options(index, ca_file, tmp_path / "cache"))
    assert result.returncode == 1
    assert "packaging" in result.stderr
    if swap == "download":
        assert _sha256(other) in result.stderr
    else:  # the message names the pins' line: the script's own file, named for the mode
        assert "matches the hashes pinned in" in result.stderr
        pins = "CORE_PINS" if mode else "RUNTIME_PINS"
        assert f"{os.sep}{pins}:" in result.stderr
    assert snapshot(venv.path) == before


def test_a_swapped_pinned_requirement_is_refused(
    venv: Venv, index: LocalIndex, ca_file: Path, script: Path, make_wheel: WheelMaker,
    repacked: dict[str, Repacked], standin: Repacked, tmp_path: Path,
) -> None:
    for r in (*repacked.values(), standin):
        index.add(r.path)
    good = make_wheel("demo", "1.0")
    evil = make_wheel("demo", "1.0", files={"demo/__init__.py": "print('swapped')\n"})
    index.add(good, serve_bytes=evil.read_bytes())
    before = snapshot(venv.path)
    result = run(venv.python, script, "demo==1.0", f"--hash=sha256:{_sha256(good.read_bytes())}",
                 *STAND_IN_STAGE, *index_options(index, ca_file, tmp_path / "cache"))
    assert result.returncode == 1
    assert _sha256(evil.read_bytes()) in result.stderr
    assert snapshot(venv.path) == before


@pytest.mark.parametrize(
    "args", [["demo"], ["demo==1.0"], ["demo>=1", f"--hash=sha256:{'0' * 64}"]],
    ids=["bare", "no-hash", "not-exact"])
def test_unpinned_requirements_are_refused_before_any_request(
    args: list[str], venv: Venv, index: LocalIndex, ca_file: Path, script: Path,
    tmp_path: Path,
) -> None:
    before = snapshot(venv.path)
    result = run(venv.python, script, *args, *index_options(index, ca_file, tmp_path / "c"))
    assert result.returncode == 2
    assert "installs pinned requirements only" in result.stderr
    assert args[0] in result.stderr
    assert index.requests == []
    assert snapshot(venv.path) == before


def test_core_only_is_refused_with_requirements(
    venv: Venv, index: LocalIndex, ca_file: Path, script: Path, tmp_path: Path,
) -> None:
    before = snapshot(venv.path)
    result = run(venv.python, script, "--core-only", "demo==1.0", f"--hash=sha256:{'0' * 64}",
                 *index_options(index, ca_file, tmp_path / "c"))
    assert result.returncode == 2
    assert "--core-only" in result.stderr and "requirements" in result.stderr
    assert index.requests == []
    assert snapshot(venv.path) == before


def test_ctrl_c_during_the_staged_install_ends_it_cleanly(
    venv: Venv, index: LocalIndex, ca_file: Path, script: Path,
    repacked: dict[str, Repacked], standin: Repacked, make_wheel: WheelMaker,
    tmp_path: Path,
) -> None:
    """Ctrl-C (SIGINT to the terminal's process group) while the staged secinstall
    downloads: it stops and says so, the script waits for it and returns its exit code,
    with no traceback and the environment unchanged."""
    for r in (*repacked.values(), standin):
        index.add(r.path)
    demo = make_wheel("demo", "1.0")
    index.add(demo)
    path = f"/files/{demo.name}"
    index.misbehave(path, faults.stall(), times=100)  # only the second phase asks for it
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    before = snapshot(venv.path)
    code, err = interrupt_when_requested(
        [str(venv.python), str(script), "demo==1.0", f"--hash=sha256:{_sha256(demo.read_bytes())}",
         "--timeout", "2", *STAND_IN_STAGE, *index_options(index, ca_file, tmp_path / "c")],
        index, path, env=env)
    assert code == 130, err
    assert "error: interrupted" in err
    assert "Traceback" not in err
    assert index.requests.count(path) == 1  # stopped, not retried
    assert snapshot(venv.path) == before


def test_core_only_is_refused_with_attestations_it_cannot_check(
    venv: Venv, index: LocalIndex, ca_file: Path, script: Path, tmp_path: Path,
) -> None:
    before = snapshot(venv.path)
    result = run(venv.python, script, "--core-only", "--attestations", "require",
                 *index_options(index, ca_file, tmp_path / "c"))
    assert result.returncode == 2
    assert "--core-only installs no verifier" in result.stderr
    assert index.requests == []
    assert snapshot(venv.path) == before


def test_a_damaged_script_is_refused(venv: Venv, script: Path, tmp_path: Path) -> None:
    text = script.read_text()
    start = text.index('PAYLOAD = """\n') + len('PAYLOAD = """\n') + 5000
    start += text[start] == "\n"
    # Another valid base85 character: the payload decodes, but to other bytes.
    damaged = text[:start] + ("0" if text[start] != "0" else "1") + text[start + 1:]
    path = tmp_path / "get-secinstall.py"
    path.write_text(damaged)
    before = snapshot(venv.path)
    result = run(venv.python, path)
    assert result.returncode == 2
    assert "this file is damaged" in result.stderr
    assert snapshot(venv.path) == before


# --- the build -------------------------------------------------------------------------------


def _payload(script_bytes: bytes) -> zipfile.ZipFile:
    text = script_bytes.decode()
    encoded = text.split('PAYLOAD = """\n', 1)[1].split('"""', 1)[0]
    return zipfile.ZipFile(io.BytesIO(base64.b85decode("".join(encoded.split()))))


def _copy_checkout(dest: Path) -> Path:
    for name in ("src", "vendor", "requirements"):
        shutil.copytree(ROOT / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copyfile(ROOT / name, dest / name)
    return dest


def test_two_builds_in_two_places_are_byte_identical(tmp_path: Path) -> None:
    copy = _copy_checkout(tmp_path / "elsewhere")
    first, second = build_script(ROOT), build_script(copy)
    assert _sha256(first) == _sha256(second)
    archive = _payload(first)
    names = archive.namelist()
    assert names == sorted(names)
    assert all(i.date_time == ZIP_DATE for i in archive.infolist())
    assert not any(n.startswith("/") or ".." in n.split("/") for n in names)
    # The embedded wheel is the one the script pins.
    text = first.decode()
    wheel = next(n for n in names if n.startswith("wheels/"))
    assert f"WHEEL_SHA256 = '{_sha256(archive.read(wheel))}'" in text
    assert str(ROOT) not in text and str(copy) not in text


def _constant(script_bytes: bytes, name: str) -> str:
    """The value the script assigns to `name`, as Python reads it."""
    for node in ast.parse(script_bytes).body:
        if not isinstance(node, ast.Assign):
            continue
        if [getattr(t, "id", None) for t in node.targets] == [name]:
            value = ast.literal_eval(node.value)
            assert isinstance(value, str)
            return value
    raise AssertionError(f"the script assigns no {name}")


def test_the_script_embeds_both_pin_lists_and_exactly_the_vendored_files() -> None:
    data = build_script(ROOT)
    core = _constant(data, "CORE_PINS")
    assert core == "".join(f"{pin.line}\n" for pin in read_pins(VENDOR / "vendor.txt"))
    lib = {n.removeprefix("lib/") for n in _payload(data).namelist() if n.startswith("lib/")}
    assert lib == {f for d in check_vendored(VENDOR) for f in d.files}
    # The runtime lock, as it is: every line readable in the script.
    runtime = RUNTIME_TXT.read_text(encoding="utf-8")
    assert _constant(data, "RUNTIME_PINS") == runtime
    assert f'RUNTIME_PINS = r"""{runtime}"""\n' in data.decode()


def test_a_runtime_lock_without_a_dependency_of_secinstall_is_refused(tmp_path: Path) -> None:
    """A lock older than pyproject.toml would make every default install fail: the build
    refuses it."""
    copy = _copy_checkout(tmp_path / "checkout")
    lock = copy / "requirements" / "runtime.txt"
    text = lock.read_text()
    start = text.index("\nsigstore==") + 1
    end = text.index("\n", text.index("# via", start)) + 1
    lock.write_text(text[:start] + text[end:])
    with pytest.raises(ConfigError) as info:
        build_script(copy)
    assert "sigstore" in info.value.message
    assert "nox -s lock" in info.value.message


def test_an_extras_requirements_need_no_runtime_pin(tmp_path: Path) -> None:
    """The script installs secinstall without extras, so `secinstall[spdx]`'s spdx-tools
    needs no line in the runtime lock; a requirement for some Pythons only still does."""
    wheel = build_wheel(tmp_path, "secinstall", "1.0", requires=[
        "pip>=24.2", "tomli>=1.1; python_version < '3.11'", "spdx-tools>=0.8; extra == 'spdx'",
        "both>=1; python_version >= '3' and extra == 'spdx'"])
    pins = parse_files([], args=["pip==26.3"]).requirements
    assert unpinned_dependencies(wheel, pins) == ["tomli>=1.1; python_version < '3.11'"]


@pytest.mark.parametrize(("lock", "expected"), [
    ("demo>=1.0 --hash=sha256:" + "a" * 64, "demo>=1.0 must be NAME==VERSION"),
    ("demo==1.0", "demo==1.0 must be NAME==VERSION with --hash=sha256"),
    ("demo==1.0 --hash=sha512:" + "a" * 128, "must be NAME==VERSION"),
    ("--index-url https://evil.example/simple/\ndemo==1.0 --hash=sha256:" + "a" * 64,
     "--index-url"),
    ("secinstall==0.1 --hash=sha256:" + "a" * 64, "secinstall itself"),
    ('demo==1.0 ; platform_release == "${RELEASE}" --hash=sha256:' + "a" * 64,
     "environment variable"),
    ("-r other.txt", "includes (-r)"),
], ids=["not-exact", "no-hash", "not-sha256", "index-option", "secinstall", "env-var",
        "include"])
def test_a_runtime_lock_the_script_could_not_trust_is_refused(
    lock: str, expected: str, tmp_path: Path,
) -> None:
    (tmp_path / "other.txt").write_text("other==1 --hash=sha256:" + "b" * 64 + "\n")
    path = tmp_path / "runtime.txt"
    path.write_text(lock + "\n")
    with pytest.raises(ConfigError) as info:
        read_runtime_pins(path)
    assert expected in info.value.message


# --- vendor/ ---------------------------------------------------------------------------------


def test_vendor_holds_the_pinned_distributions_unchanged_with_their_sbom() -> None:
    dists = check_vendored(VENDOR)
    assert {d.pin.name for d in dists} == {"installer", "packaging", "truststore", "urllib3",
                                          "tomli"}
    text = (VENDOR / "bom.cdx.json").read_text()
    assert text == bom_json(dists)
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    hashes = {c["name"]: c["hashes"][0]["content"] for c in json.loads(text)["components"]}
    assert hashes == {d.pin.name: d.pin.sha256 for d in dists}


@pytest.mark.parametrize("change", ["edited", "added", "removed"])
def test_a_locally_edited_vendor_tree_is_refused(change: str, tmp_path: Path) -> None:
    copy = tmp_path / "vendor"
    shutil.copytree(VENDOR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / "packaging" / "version.py"
    if change == "edited":
        target.write_text(target.read_text() + "\n# a local edit\n")
    elif change == "added":
        (copy / "packaging" / "extra.py").write_text("x = 1\n")
    else:
        target.unlink()
    with pytest.raises(VerificationError) as info:
        check_vendored(copy)
    assert "packaging/" in info.value.message


@pytest.mark.parametrize(("argv", "requirements", "options"), [
    (["pip==25.1", "--hash=sha256:aa", "--hash", "sha256:bb", "-i", "https://x/"],
     [["pip==25.1", "--hash=sha256:aa", "--hash=sha256:bb"]], ["-i", "https://x/"]),
    (["--cert", "ca.pem", "a==1", "--hash=sha256:aa", "b==2", "--hash=sha256:bb", "-q"],
     [["a==1", "--hash=sha256:aa"], ["b==2", "--hash=sha256:bb"]], ["--cert", "ca.pem", "-q"]),
    (["--target", "demo==1", "--no-index"], [], ["--target", "demo==1", "--no-index"]),
], ids=["hashes-follow-their-requirement", "two-requirements", "option-values-are-no-reqs"])
def test_arguments_are_split_into_pinned_requirements_and_options(
    argv: list[str], requirements: list[list[str]], options: list[str],
) -> None:
    assert split_requirements(argv) == (requirements, options)


def test_options_are_passed_on_to_secinstall_install() -> None:
    from secinstall._bootstrap_template import build_parser

    args = build_parser().parse_args(["-i", "https://x/", "--cert", "a.pem", "--cert", "b.pem",
                                      "--no-index", "-vv", "--target", "t",
                                      "--break-system-packages"])
    assert forwarded(args) == ["--index-url", "https://x/", "--no-index", "--cert", "a.pem",
                               "--cert", "b.pem", "--target", "t", "--break-system-packages",
                               "--verbose", "--verbose"]


# --- the real pins, against PyPI ---------------------------------------------------------------


@pytest.mark.network
def test_the_real_script_installs_secinstall_core_from_pypi(venv: Venv, tmp_path: Path) -> None:
    script = tmp_path / "get-secinstall.py"
    script.write_bytes(build_script(ROOT))
    result = run(venv.python, script, "--core-only", "--cache-dir", tmp_path / "cache")
    assert result.returncode == 0, result.stderr
    pins = {p.name: p.version for p in read_pins(VENDOR / "vendor.txt") if p.name in CORE}
    assert installed_versions(venv) == {"secinstall": __version__, **pins}
    assert run(venv.python, "-m", "secinstall", "--version").returncode == 0


def installed_versions(venv: Venv) -> dict[str, str]:
    return {str(canonicalize_name(n)): v for n, _, v in
            (p.name.removesuffix(".dist-info").partition("-")
             for p in venv.purelib.glob("*.dist-info"))}


@pytest.fixture(scope="session")
def runtime_wheels() -> list[Path]:
    """The wheels requirements/runtime.txt pins for this interpreter, downloaded from
    PyPI by pip (each checked against its pins) once: kept under .bench/, named by the
    lock's sha256 and the interpreter, so a changed lock downloads again."""
    lock = _sha256(RUNTIME_TXT.read_bytes())[:16]
    platform = sysconfig.get_platform().replace("-", "_").replace(".", "_")
    dest = ROOT / ".bench" / "runtime-wheels" / (
        f"{sys.implementation.cache_tag}-{platform}-{lock}")
    if not dest.is_dir():
        part = dest.with_name(f".{dest.name}.{os.getpid()}.part")
        shutil.rmtree(part, ignore_errors=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
        env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--require-hashes",
             "--only-binary=:all:", "--no-deps", "-r", str(RUNTIME_TXT), "-d", str(part)],
            capture_output=True, text=True, env=env, check=False, timeout=600)
        assert proc.returncode == 0, proc.stderr
        try:
            part.rename(dest)
        except OSError:  # another test process got there first
            shutil.rmtree(part)
    return sorted(dest.glob("*.whl"))


@pytest.mark.network
def test_installs_secinstall_with_all_its_runtime_dependencies(
    venv: Venv, index: LocalIndex, ca_file: Path, runtime_wheels: list[Path], tmp_path: Path,
) -> None:
    """The real script, by default, from the local index serving PyPI's wheels of
    runtime.txt, one of them (pypi-attestations) with its real PEP 740 provenance:
    secinstall and every pin that applies here, that file's attestation verified by the
    staged secinstall (real sigstore, offline trust root), and they work (pip, verify, an
    SBOM)."""
    for wheel in runtime_wheels:
        if wheel.name != WHEEL:
            index.add(wheel)
    assert WHEEL in {w.name for w in runtime_wheels}, "runtime.txt no longer pins the fixture"
    serve_real_wheel(index)
    script = tmp_path / "get-secinstall.py"
    script.write_bytes(build_script(ROOT))
    result = run(venv.python, script, *index_options(index, ca_file, tmp_path / "cache"))
    assert result.returncode == 0, result.stderr
    assert "attestations not checked" not in result.stderr
    assert "Attestations verified for 1 file(s):" in result.stdout
    assert f"{WHEEL}: published by" in result.stdout
    assert "installed with all its runtime dependencies (RUNTIME_PINS)" in result.stderr
    wanted: dict[str, str] = {
        canonicalize_name(ur.req.name): next(iter(ur.req.specifier)).version
        for ur in read_runtime_pins(RUNTIME_TXT)
        if ur.req.marker is None or ur.req.marker.evaluate()}
    assert installed_versions(venv) == {"secinstall": __version__, **wanted}

    version = run(venv.python, "-m", "secinstall", "--version")
    assert version.stdout.strip() == f"secinstall {__version__}", version.stderr
    verified = run(venv.python, "-m", "secinstall", "verify", ATTESTED)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith(f"OK {ATTESTED}: sha256:{_sha256(ATTESTED.read_bytes())}")
    assert run(venv.python, "-m", "pip", "--version").stdout.startswith(f"pip {wanted['pip']} ")
    sbom = run(venv.python, "-m", "secinstall", "sbom")
    assert sbom.returncode == 0, sbom.stderr
    components = {canonicalize_name(c["name"]) for c in json.loads(sbom.stdout)["components"]}
    assert components >= {"secinstall", *wanted}


@pytest.mark.network
def test_the_real_script_installs_pinned_pip_from_pypi(venv: Venv, tmp_path: Path) -> None:
    pip = next(ur for ur in parse_files([ROOT / "requirements" / "tests.txt"]).requirements
               if ur.req.name == "pip")
    hashes: Sequence[str] = [f"--hash=sha256:{h}" for h in sorted(pip.hashes["sha256"])]
    script = tmp_path / "get-secinstall.py"
    script.write_bytes(build_script(ROOT))
    result = run(venv.python, script, str(pip.req), *hashes, "--cache-dir", tmp_path / "c")
    assert result.returncode == 0, result.stderr
    # pip's wheel went through the secinstall staged from the real runtime pins.
    assert "Staging the verifier" in result.stderr
    assert "attestations not checked" not in result.stderr
    assert installed(venv) == {"pip"}
    version = run(venv.python, "-m", "pip", "--version")
    assert version.stdout.startswith(f"pip {next(iter(pip.req.specifier)).version} ")


@pytest.mark.network
def test_vendor_is_exactly_the_pinned_wheels_unpacked(tmp_path: Path) -> None:
    """Re-vendoring from PyPI into a copy of vendor.txt gives vendor/ byte for byte."""
    (tmp_path / "vendor").mkdir()
    for name in ("vendor.txt", "README.md", "ruff.toml"):
        shutil.copyfile(VENDOR / name, tmp_path / "vendor" / name)
    vendor(tmp_path, cache_dir=tmp_path / "cache")

    def caches(rel: str) -> bool:
        return rel.endswith("__pycache__")

    assert snapshot(tmp_path / "vendor", caches) == snapshot(VENDOR, caches)
