"""Tests of secinstall.lockfiles.pylock, reading: PEP 751 lock files into a `Plan`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from tests.support.wheels import WheelMaker

from secinstall.errors import (
    HashMismatchError,
    RequirementsError,
    ResolveError,
    SdistRefusedError,
    SecinstallError,
)
from secinstall.lockfiles import is_lock_path, plan_from_pylock
from secinstall.models import FetchedFile, Publisher
from secinstall.target import Target, resolve_target
from secinstall.verify.hashes import check_hashes

LINUX_TAGS = ("cp311-cp311-manylinux_2_17_x86_64", "cp311-abi3-manylinux_2_17_x86_64",
              "py3-none-manylinux_2_17_x86_64", "cp311-none-any", "py3-none-any")
WIN_TAGS = ("cp311-cp311-win_amd64", "cp311-abi3-win_amd64", "py3-none-win_amd64",
            "cp311-none-any", "py3-none-any")
HEADER = 'lock-version = "1.0"\ncreated-by = "tests"\n'


@pytest.fixture(scope="module")
def host() -> Target:
    return resolve_target()


def make_target(host: Target, platform: str = "linux", version: str = "3.11.9") -> Target:
    """`host` described as CPython `version` on x86-64 Linux or Windows (tags and markers)."""
    major, minor, micro = (int(p) for p in version.split("."))
    windows = platform == "win32"
    markers = {
        **host.markers,
        "implementation_name": "cpython", "platform_python_implementation": "CPython",
        "os_name": "nt" if windows else "posix", "sys_platform": platform,
        "platform_system": "Windows" if windows else "Linux",
        "platform_machine": "AMD64" if windows else "x86_64",
        "python_version": f"{major}.{minor}", "python_full_version": version,
        "implementation_version": version,
    }
    tags = WIN_TAGS if windows else LINUX_TAGS
    cp = f"cp{major}{minor}"
    return dataclasses.replace(host, version=(major, minor, micro), markers=markers,
                               tags=tuple(t.replace("cp311", cp) for t in tags))


@pytest.fixture
def linux(host: Target) -> Target:
    return make_target(host)


@pytest.fixture
def windows(host: Target) -> Target:
    return make_target(host, "win32")


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def package(name: str, version: str, *wheels: str, extra: str = "") -> str:
    """A `[[packages]]` entry; `extra` holds more keys of the package table."""
    text = f'\n[[packages]]\nname = "{name}"\nversion = "{version}"\n{extra}\n'
    for filename in wheels:
        text += (f'[[packages.wheels]]\nurl = "https://files.example.org/{filename}"\n'
                 f'hashes = {{sha256 = "{digest(filename)}"}}\n')
    return text


def write_lock(tmp_path: Path, body: str, header: str = HEADER,
               name: str = "pylock.toml") -> Path:
    path = tmp_path / name
    path.write_text(header + body, encoding="utf-8")
    return path


def names(path: Path, target: Target, extras: Sequence[str] = (),
          dependency_groups: Sequence[str] | None = None) -> list[str]:
    plan, _ = plan_from_pylock(path, target, extras=extras, dependency_groups=dependency_groups)
    return [d.name for d in plan.items]


# --- the shape pip writes ------------------------------------------------------------------


def test_lock_written_by_pip(tmp_path: Path, make_wheel: WheelMaker, host: Target) -> None:
    wheels = tmp_path / "wheels"
    for wheel in (make_wheel("alpha", "1.0", requires=["beta>=2"]), make_wheel("beta", "2.1"),
                  make_wheel("unused", "1.0")):
        wheels.mkdir(exist_ok=True)
        (wheels / wheel.name).write_bytes(wheel.read_bytes())
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "lock", "--no-index", "--find-links", str(wheels),
         "-o", str(tmp_path / "pylock.toml"), "alpha"],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr

    plan, pins = plan_from_pylock(tmp_path / "pylock.toml", host)

    assert [(d.name, d.version) for d in plan.items] == [("alpha", "1.0"), ("beta", "2.1")]
    for dist in plan.items:
        wheel = wheels / dist.file.filename
        sha256 = hashlib.sha256(wheel.read_bytes()).hexdigest()
        assert dist.file.url == wheel.as_uri()
        assert dist.file.hashes == {"sha256": sha256}
        assert dist.pinned == {"sha256": frozenset({sha256})}
        assert dist.file.origin == str(tmp_path / "pylock.toml")
        assert dist.requested
    assert (plan.resolver, plan.require_hashes) == ("lock", True)
    assert pins == {}


# --- selection for a target ----------------------------------------------------------------

SELECTION = (
    package("common", "1.0", "common-1.0-py3-none-any.whl")
    + package("winonly", "2.0", "winonly-2.0-cp311-cp311-win_amd64.whl",
              extra="marker = \"sys_platform == 'win32'\"")
    + package("linuxonly", "3.0", "linuxonly-3.0-cp311-cp311-manylinux_2_17_x86_64.whl",
              extra="marker = \"sys_platform == 'linux'\"")
    + package("native", "4.0", "native-4.0-cp311-cp311-win_amd64.whl",
              "native-4.0-cp311-cp311-manylinux_2_17_x86_64.whl", "native-4.0-py3-none-any.whl")
    + package("socks", "5.0", "socks-5.0-py3-none-any.whl",
              extra="marker = \"'socks' in extras\"")
    + package("pytest", "8.0", "pytest-8.0-py3-none-any.whl",
              extra="marker = \"'dev' in dependency_groups\"")
)
SELECTION_HEADER = HEADER + 'extras = ["socks"]\ndependency-groups = ["dev"]\n' \
    'default-groups = []\n'


@pytest.mark.parametrize(
    ("platform", "options", "expected"),
    [
        ("linux", {}, ["common", "linuxonly", "native"]),
        ("win32", {}, ["common", "winonly", "native"]),
        ("linux", {"extras": ["SOCKS"]}, ["common", "linuxonly", "native", "socks"]),
        ("win32", {"dependency_groups": ["dev"]}, ["common", "winonly", "native", "pytest"]),
    ],
    ids=["linux", "windows", "extra", "group"],
)
def test_markers_select_per_target(tmp_path: Path, host: Target, platform: str,
                                   options: dict[str, list[str]], expected: list[str]) -> None:
    path = write_lock(tmp_path, SELECTION, SELECTION_HEADER)
    assert names(path, make_target(host, platform), **options) == expected


@pytest.mark.parametrize(
    ("platform", "wheel"),
    [("linux", "native-4.0-cp311-cp311-manylinux_2_17_x86_64.whl"),
     ("win32", "native-4.0-cp311-cp311-win_amd64.whl")],
    ids=["linux", "windows"],
)
def test_best_wheel_for_the_target(tmp_path: Path, host: Target, platform: str,
                                   wheel: str) -> None:
    plan, _ = plan_from_pylock(write_lock(tmp_path, SELECTION, SELECTION_HEADER),
                               make_target(host, platform))
    native = next(d for d in plan.items if d.name == "native")
    assert native.file.filename == wheel
    assert native.file.url == f"https://files.example.org/{wheel}"
    assert native.pinned == {"sha256": frozenset({digest(wheel)})}


def test_unknown_extra_or_group_refused(tmp_path: Path, linux: Target) -> None:
    path = write_lock(tmp_path, SELECTION, SELECTION_HEADER)
    with pytest.raises(RequirementsError) as caught:
        plan_from_pylock(path, linux, extras=["tls"], dependency_groups=["docs"])
    assert "has no extra tls (it has: socks)" in caught.value.message
    assert "no dependency group docs (it has: dev)" in caught.value.message


def test_wheel_for_another_platform_only_refused(tmp_path: Path, linux: Target) -> None:
    path = write_lock(tmp_path, package("common", "1.0", "common-1.0-py3-none-any.whl")
                      + package("winlib", "1.0", "winlib-1.0-cp311-cp311-win_amd64.whl")
                      + package("maclib", "2.0", "maclib-2.0-cp311-cp311-macosx_11_0_arm64.whl"))
    with pytest.raises(ResolveError) as caught:
        plan_from_pylock(path, linux)
    message = caught.value.message
    assert message.startswith(f"{path}: no wheel in the lock fits the target (Python 3.11.9 on "
                              "linux x86_64, best tag cp311-cp311-manylinux_2_17_x86_64)")
    assert "for winlib 1.0, maclib 2.0" in message
    assert "winlib-1.0-cp311-cp311-win_amd64.whl" in message
    assert "maclib-2.0-cp311-cp311-macosx_11_0_arm64.whl" in message
    assert "common" not in message


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (HEADER + 'requires-python = ">=3.12"\n',
         "does not satisfy the Python version requirement '>=3.12'"),
        (HEADER + "environments = [\"sys_platform == 'win32'\", \"sys_platform == 'darwin'\"]\n",
         "'sys_platform == \"win32\"' or 'sys_platform == \"darwin\"'"),
    ],
    ids=["requires-python", "environments"],
)
def test_lock_not_for_the_target_refused(tmp_path: Path, linux: Target, header: str,
                                         expected: str) -> None:
    path = write_lock(tmp_path, package("common", "1.0", "common-1.0-py3-none-any.whl"), header)
    with pytest.raises(ResolveError) as caught:
        plan_from_pylock(path, linux)
    assert caught.value.message.startswith(f"{path} can't be used for the target (Python 3.11.9")
    assert expected in caught.value.message


def test_package_requires_python_checked(tmp_path: Path, host: Target) -> None:
    path = write_lock(tmp_path, package("new", "1.0", "new-1.0-py3-none-any.whl",
                                        extra='requires-python = ">=3.12"'))
    assert names(path, make_target(host, version="3.12.1")) == ["new"]
    with pytest.raises(ResolveError, match=r"'>=3.12' for package 'new'"):
        plan_from_pylock(path, make_target(host, version="3.11.9"))


def test_same_package_selected_twice_refused(tmp_path: Path, linux: Target) -> None:
    path = write_lock(tmp_path, package("twice", "1.0", "twice-1.0-py3-none-any.whl")
                      + package("twice", "2.0", "twice-2.0-py3-none-any.whl"))
    with pytest.raises(ResolveError, match="Multiple packages with the name 'twice'"):
        plan_from_pylock(path, linux)


# --- what each entry must be ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("hashes", "expected"),
    [
        (None, "Missing required value at packages[0].wheels[0].hashes (package 'alpha')"),
        ("{}", "At least one hash must be provided at packages[0].wheels[0].hashes "
               "(package 'alpha')"),
        ('{md5 = "0cc175b9c0f1b6a831c399e269772661"}',
         "alpha: alpha-1.0-py3-none-any.whl has no sha256, sha384 or sha512 hash (only md5)"),
        ('{sha256 = "abc123"}',
         "alpha: alpha-1.0-py3-none-any.whl has a malformed sha256 hash 'abc123' (expected 64"),
    ],
    ids=["no-hashes", "empty", "md5-only", "malformed"],
)
def test_wheel_without_usable_hash_refused(tmp_path: Path, linux: Target, hashes: str | None,
                                           expected: str) -> None:
    wheel = '[[packages.wheels]]\nurl = "https://files.example.org/alpha-1.0-py3-none-any.whl"\n'
    if hashes is not None:
        wheel += f"hashes = {hashes}\n"
    path = write_lock(tmp_path, package("alpha", "1.0") + wheel)
    with pytest.raises(RequirementsError) as caught:
        plan_from_pylock(path, linux)
    assert str(path) in caught.value.message
    assert expected in caught.value.message


def test_strong_hashes_kept_weak_ones_dropped(tmp_path: Path, linux: Target) -> None:
    sha512 = "AB" * 64
    wheel = ('[[packages.wheels]]\nurl = "https://files.example.org/alpha-1.0-py3-none-any.whl"\n'
             f'hashes = {{md5 = "0cc175b9c0f1b6a831c399e269772661", sha512 = "{sha512}", '
             f'sha256 = "{"C" * 64}"}}\n')
    plan, _ = plan_from_pylock(write_lock(tmp_path, package("alpha", "1.0") + wheel), linux)
    # An md5 match must never be enough: only sha256/384/512 pin the file.
    assert plan.items[0].pinned == {"sha256": frozenset({"c" * 64}),
                                    "sha512": frozenset({sha512.lower()})}
    assert plan.items[0].file.hashes == {"sha256": "c" * 64, "sha512": sha512.lower()}


def test_changed_hash_is_pinned_and_refuses_the_download(
        tmp_path: Path, linux: Target, make_wheel: WheelMaker) -> None:
    wheel = make_wheel("alpha", "1.0")
    real = hashlib.sha256(wheel.read_bytes()).hexdigest()
    changed = real[:-1] + ("0" if real[-1] != "0" else "1")
    path = write_lock(tmp_path, package("alpha", "1.0") + (
        f'[[packages.wheels]]\nurl = "{wheel.as_uri()}"\nhashes = {{sha256 = "{changed}"}}\n'))

    plan, _ = plan_from_pylock(path, linux)

    dist = plan.items[0]
    assert dist.pinned == {"sha256": frozenset({changed})}
    assert dist.file.hashes == {"sha256": changed}
    fetched = FetchedFile(dist=dist, path=wheel, hashes={"sha256": real},
                          size=wheel.stat().st_size, from_cache=False)
    with pytest.raises(HashMismatchError, match=f"the downloaded file has sha256:{real}"):
        check_hashes(fetched, require_pin=plan.require_hashes)


def test_relative_path_entries_and_details(tmp_path: Path, linux: Target) -> None:
    wheel = ('[[packages.wheels]]\npath = "wheels/alpha-1.0-py3-none-any.whl"\nsize = 1234\n'
             "upload-time = 2024-05-06T07:08:09.123456Z\n"
             f'hashes = {{sha256 = "{"a" * 64}"}}\n')
    (tmp_path / "sub").mkdir()
    path = write_lock(tmp_path / "sub",
                      package("alpha", "1.0", extra='requires-python = ">=3.8"') + wheel)
    plan, _ = plan_from_pylock(path, linux)
    file = plan.items[0].file
    assert file.url == (tmp_path / "sub" / "wheels" / "alpha-1.0-py3-none-any.whl").as_uri()
    assert (file.filename, file.size) == ("alpha-1.0-py3-none-any.whl", 1234)
    assert file.upload_time == "2024-05-06T07:08:09.123456Z"
    assert file.requires_python == ">=3.8"


def test_dependencies_become_via(tmp_path: Path, linux: Target) -> None:
    path = write_lock(tmp_path, package("app", "1.0", "app-1.0-py3-none-any.whl",
                                        extra='dependencies = [{name = "lib"}]')
                      + package("lib", "2.0", "lib-2.0-py3-none-any.whl"))
    plan, _ = plan_from_pylock(path, linux)
    assert {d.name: d.via for d in plan.items} == {"app": (), "lib": ("app==1.0",)}


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ('[packages.sdist]\nurl = "https://files.example.org/src-1.0.tar.gz"\n'
         f'hashes = {{sha256 = "{"a" * 64}"}}\n',
         "src 1.0 is locked only as a source distribution, src-1.0.tar.gz"),
        ('[packages.vcs]\ntype = "git"\nurl = "https://github.com/o/src"\ncommit-id = "abc"\n',
         "src 1.0 comes from a VCS checkout (https://github.com/o/src)"),
        ('[packages.directory]\npath = "../src"\n',
         "src 1.0 comes from a local directory (../src)"),
        ('[packages.archive]\nurl = "https://example.org/src.zip"\n'
         f'hashes = {{sha256 = "{"a" * 64}"}}\n',
         "src 1.0 is a direct archive reference (https://example.org/src.zip)"),
    ],
    ids=["sdist", "vcs", "directory", "archive"],
)
def test_non_wheel_sources_refused(tmp_path: Path, linux: Target, entry: str,
                                   expected: str) -> None:
    path = write_lock(tmp_path, package("ok", "1.0", "ok-1.0-py3-none-any.whl")
                      + package("src", "1.0") + entry)
    with pytest.raises(SdistRefusedError) as caught:
        plan_from_pylock(path, linux)
    assert caught.value.message.startswith(f"{path}: {expected}")
    assert "--allow-build" in caught.value.message


def test_sdist_fallback_names_the_unfit_wheels(tmp_path: Path, linux: Target) -> None:
    path = write_lock(tmp_path, package("src", "1.0", "src-1.0-cp311-cp311-win_amd64.whl")
                      + '[packages.sdist]\nurl = "https://files.example.org/src-1.0.tar.gz"\n'
                      f'hashes = {{sha256 = "{"a" * 64}"}}\n')
    with pytest.raises(SdistRefusedError) as caught:
        plan_from_pylock(path, linux)
    assert "only as a source distribution, src-1.0.tar.gz (none of its wheels fits the " \
        "target, Python 3.11.9 on linux x86_64" in caught.value.message
    assert "src-1.0-cp311-cp311-win_amd64.whl" in caught.value.message


def test_every_problem_reported_at_once(tmp_path: Path, linux: Target) -> None:
    weak = ('[[packages.wheels]]\nurl = "https://files.example.org/weak-1.0-py3-none-any.whl"\n'
            'hashes = {md5 = "0cc175b9c0f1b6a831c399e269772661"}\n')
    path = write_lock(
        tmp_path,
        package("weak", "1.0") + weak
        + package("src", "1.0") + '[packages.directory]\npath = "src"\n'
        + package("signed", "1.0", "signed-1.0-py3-none-any.whl")
        + '[[packages.attestation-identities]]\nkind = "CircleCI"\nproject-id = "x"\n')
    with pytest.raises(RequirementsError) as caught:
        plan_from_pylock(path, linux)
    assert caught.value.message.endswith("(and 2 more)")
    assert [d.split(":", 1)[0].split(" ", 1)[0] for d in caught.value.details] == \
        ["weak", "signed", "src"]


# --- attestation identities → publisher pins -------------------------------------------------


def identity(**keys: str) -> str:
    return "[[packages.attestation-identities]]\n" + "".join(
        f"{k} = {json.dumps(v)}\n" for k, v in keys.items())


def test_attestation_identities_become_pins(tmp_path: Path, linux: Target) -> None:
    path = write_lock(
        tmp_path,
        package("gh", "1.0", "gh-1.0-py3-none-any.whl")
        + identity(kind="GitHub", repository="pypa/sampleproject", workflow="release.yml",
                   environment="pypi")
        + identity(kind="GitHub", repository="pypa/sampleproject-mirror")
        + package("gl", "1.0", "gl-1.0-py3-none-any.whl")
        + identity(kind="GitLab", repository="group/sub/project",
                   workflow_filepath=".gitlab-ci.yml")
        + package("gg", "1.0", "gg-1.0-py3-none-any.whl")
        + identity(kind="Google", email="publisher@project.iam.gserviceaccount.com")
        + package("none", "1.0", "none-1.0-py3-none-any.whl"))

    _, pins = plan_from_pylock(path, linux)

    assert pins == {
        "gh": (Publisher("github", "pypa/sampleproject", "release.yml", "pypi"),
               Publisher("github", "pypa/sampleproject-mirror")),
        "gl": (Publisher("gitlab", "group/sub/project", ".gitlab-ci.yml"),),
        "gg": (Publisher("google", "publisher@project.iam.gserviceaccount.com"),),
    }


def test_identities_of_unselected_packages_ignored(tmp_path: Path, linux: Target) -> None:
    path = write_lock(tmp_path, package("common", "1.0", "common-1.0-py3-none-any.whl")
                      + package("winonly", "1.0", "winonly-1.0-py3-none-any.whl",
                                extra="marker = \"sys_platform == 'win32'\"")
                      + identity(kind="Unknown", id="x"))
    plan, pins = plan_from_pylock(path, linux)
    assert [d.name for d in plan.items] == ["common"]
    assert pins == {}


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ({"kind": "CircleCI", "project_id": "p"},
         "unsupported kind 'CircleCI' (secinstall knows GitHub, GitLab, Google)"),
        ({"kind": "GitHub", "repository": "o/r", "ref": "main"},
         "unknown key 'ref' for kind GitHub"),
        ({"kind": "GitHub", "workflow": "release.yml"}, "a GitHub identity needs 'repository'"),
        ({"kind": "GitHub", "repository": "o/r,workflow=evil.yml"},
         "repository must be a non-empty string without commas"),
        ({"kind": "GitHub", "repository": "not a repo"}, "is not a github identity"),
        ({"kind": "Google", "email": "nobody"}, "is not a google identity"),
    ],
    ids=["unknown-kind", "unknown-key", "no-repository", "comma", "bad-repo", "bad-email"],
)
def test_bad_attestation_identity_refused(tmp_path: Path, linux: Target,
                                          keys: dict[str, str], expected: str) -> None:
    path = write_lock(tmp_path, package("proj", "1.0", "proj-1.0-py3-none-any.whl")
                      + identity(**keys))
    with pytest.raises(RequirementsError) as caught:
        plan_from_pylock(path, linux)
    assert caught.value.message.startswith(f"{path} can't be installed from: proj: "
                                           "attestation identity 1: ")
    assert expected in caught.value.message


# --- unreadable lock files -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lock-version = ", "is not a valid TOML file"),
        ('lock-version = "2.0"\ncreated-by = "x"\npackages = []\n',
         "pylock version 2.0 is not supported"),
        ('created-by = "x"\npackages = []\n', "Missing required value at lock-version"),
        (HEADER + package("Not_Normal", "1.0", "not_normal-1.0-py3-none-any.whl"),
         "Name 'Not_Normal' is not normalized at packages[0].name"),
        (HEADER + package("alpha", "1.0", "beta-1.0-py3-none-any.whl"),
         "Name in 'beta-1.0-py3-none-any.whl' is not consistent with package name 'alpha' "
         "at packages[0].wheels[0] (package 'alpha')"),
        (b'lock-version = "\xff"', "is not a valid TOML file"),
    ],
    ids=["toml", "version", "no-version", "name", "wheel-name", "not-utf8"],
)
def test_invalid_lock_refused(tmp_path: Path, linux: Target, text: str | bytes,
                              expected: str) -> None:
    path = tmp_path / "pylock.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(RequirementsError) as caught:
        plan_from_pylock(path, linux)
    assert caught.value.message.startswith(str(path))
    assert expected in caught.value.message


def test_missing_lock_refused(tmp_path: Path, linux: Target) -> None:
    with pytest.raises(SecinstallError, match=r"can't read the lock file .*No such file"):
        plan_from_pylock(tmp_path / "pylock.toml", linux)


@pytest.mark.parametrize(
    ("path", "expected"),
    [("pylock.toml", True), ("dir/pylock.dev.toml", True), (Path("pylock.win-x86.toml"), True),
     ("pylock.a.b.toml", False), ("pylock.toml.txt", False), ("requirements.txt", False),
     ("my-pylock.toml", False)],
)
def test_is_lock_path(path: str | Path, expected: bool) -> None:
    assert is_lock_path(path) is expected
