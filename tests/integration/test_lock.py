"""Lock files end to end: `secinstall lock`, `install -r pylock.toml`, locks written by
`pip lock`, refusals, publisher pins from the lock, `--require-lock`, `--extra`/`--group`."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from packaging.pylock import Pylock
from packaging.utils import canonicalize_name, parse_wheel_filename

from tests.conftest import Venv, make_venv, run_in
from tests.support.cli import Run, run_cli
from tests.support.index import LocalIndex
from tests.support.pep740 import WHEEL, fixture_bytes, fixtures_dir
from tests.support.snapshot import snapshot
from tests.support.wheels import WheelMaker, build_sdist

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

Json = dict[str, Any]

#: Upload times the index gives (PEP 700), distinct per file so a mix-up shows.
UPLOADED = {
    "app": "2024-03-01T10:00:00Z",
    "lib-1.0": "2024-01-15T08:30:00Z",
    "lib-2.0": "2024-02-20T09:45:30.250000Z",
    "util": "2023-12-24T23:59:59Z",
}
ATTESTED_PROJECT = "pypi-attestations"
ATTESTED_IDENTITY = {"kind": "GitHub", "repository": "pypi/pypi-attestations",
                     "workflow": "release.yml", "environment": "pypi"}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load_toml(path: Path) -> Json:
    data: Json = tomllib.loads(path.read_text(encoding="utf-8"))
    return data


@dataclass
class Cli:
    """`secinstall COMMAND ...` in-process, pointed at the local index, with a report."""

    index: LocalIndex
    ca_file: Path
    tmp: Path
    capsys: pytest.CaptureFixture[str]
    runs: int = field(default=0)

    def __call__(self, command: str, *args: str | Path, local: bool = True) -> Run:
        argv = [command, *map(str, args)]
        return run_cli(self.index, self.ca_file, self.tmp, self.capsys, argv, local=local)

    def install(self, venv: Venv, *args: str | Path, local: bool = True) -> tuple[Run, Json]:
        """`install --python VENV ARGS --report FILE`: the run and its report ({} if none)."""
        self.runs += 1
        report = self.tmp / f"report-{self.runs}.json"
        run = self("install", "--python", venv.path, *args, "--report", report, local=local)
        data: Json = json.loads(report.read_text(encoding="utf-8")) if report.exists() else {}
        return run, data

    def venv(self, name: str) -> Venv:
        return make_venv(self.tmp / name)


@pytest.fixture
def cli(index: LocalIndex, ca_file: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(index, ca_file, tmp_path, capsys)


@pytest.fixture
def project(index: LocalIndex, make_wheel: WheelMaker) -> dict[str, Path]:
    """`app` 1.0 (requires lib>=1 and util), lib 1.0 and 2.0, util 1.0, with upload times."""
    wheels = {
        "app": make_wheel("app", "1.0", requires=["lib>=1", "util"],
                          files={"app/__init__.py": "import lib, util\n"}),
        "lib-1.0": make_wheel("lib", "1.0", files={"lib/__init__.py": "V = '1.0'\n"}),
        "lib-2.0": make_wheel("lib", "2.0", files={"lib/__init__.py": "V = '2.0'\n"}),
        "util": make_wheel("util", "1.0"),
    }
    for key, wheel in wheels.items():
        index.add(wheel, upload_time=UPLOADED[key])
    return wheels


def installed(report: Json) -> dict[str, tuple[str, str]]:
    """{name: (version, sha256)} of what a report says was installed."""
    return {canonicalize_name(item["metadata"]["name"]):
            (item["metadata"]["version"], item["secinstall"]["sha256"])
            for item in report["install"]}


def locked(lock: Path) -> dict[str, tuple[str, str]]:
    """{name: (version, sha256)} of each package's single wheel in a lock."""
    found = {}
    for package in load_toml(lock)["packages"]:
        (wheel,) = package["wheels"]
        found[package["name"]] = (package["version"], wheel["hashes"]["sha256"])
    return found


def dist_info_names(venv: Venv) -> set[str]:
    return {p.name for p in venv.purelib.glob("*.dist-info")}


# --- 1. secinstall lock, then install -r pylock.toml ------------------------------------------


def test_lock_then_install_installs_exactly_the_locked_files(
    cli: Cli, project: dict[str, Path], make_wheel: WheelMaker
) -> None:
    lock = cli.tmp / "pylock.toml"
    run = cli("lock", "--python", cli.venv("lock-target").path, "app", "-o", lock)
    assert run.code == 0, run.err
    assert f"Locked 3 distribution(s), each verified, in {lock}" in run.out

    data = load_toml(lock)
    Pylock.from_dict(data)  # a valid PEP 751 lock, as packaging reads it
    assert (data["lock-version"], data["created-by"]) == ("1.0", "secinstall")
    packages = {p["name"]: p for p in data["packages"]}
    assert {n: p["version"] for n, p in packages.items()} == {
        "app": "1.0", "lib": "2.0", "util": "1.0"}
    assert packages["app"]["dependencies"] == [{"name": "lib"}, {"name": "util"}]
    for name, key in (("app", "app"), ("lib", "lib-2.0"), ("util", "util")):
        wheel_file = project[key]
        (wheel,) = packages[name]["wheels"]
        assert packages[name]["index"] == cli.index.url
        assert wheel["name"] == wheel_file.name
        assert wheel["url"] == f"{cli.index.base_url}/files/{wheel_file.name}"
        assert wheel["size"] == wheel_file.stat().st_size
        assert wheel["upload-time"] == dt.datetime.fromisoformat(
            UPLOADED[key].replace("Z", "+00:00"))
        assert wheel["hashes"]["sha256"] == sha256(wheel_file.read_bytes())

    # A newer lib published after locking: a resolver would now pick it, the lock doesn't.
    cli.index.add(make_wheel("lib", "3.0"))
    venv = cli.venv("fresh")
    before = len(cli.index.requests)
    run, report = cli.install(venv, "-r", lock, "--no-cache-dir")

    assert run.code == 0, run.err
    assert report["secinstall"]["resolver"] == "lock"
    assert report["secinstall"]["require_hashes"] is True
    assert installed(report) == locked(lock)
    assert all("lock" in item["secinstall"]["hash_sources"] for item in report["install"])
    # Each locked file was downloaded from the lock's URL (--no-cache-dir), nothing else.
    downloads = [r for r in cli.index.requests[before:] if r.startswith("/files/")
                 and not r.endswith(".provenance")]
    assert sorted(downloads) == sorted(
        f"/files/{project[k].name}" for k in ("app", "lib-2.0", "util"))
    assert dist_info_names(venv) == {"app-1.0.dist-info", "lib-2.0.dist-info",
                                     "util-1.0.dist-info"}
    imported = run_in(venv, "import app, lib; print(lib.V)")
    assert imported.stdout == "2.0\n", imported.stderr


def test_lock_as_requirements_installs_with_require_hashes(
    cli: Cli, project: dict[str, Path]
) -> None:
    reqs = cli.tmp / "requirements.lock"
    run = cli("lock", "--python", cli.venv("lock-target").path, "app", "--format",
              "requirements", "-o", reqs)
    assert run.code == 0, run.err
    text = reqs.read_text(encoding="utf-8")
    for key in ("app", "lib-2.0", "util"):
        name, version, _, _ = parse_wheel_filename(project[key].name)
        assert f"{name}=={version} \\\n    --hash=sha256:{sha256(project[key].read_bytes())}" \
            in text

    venv = cli.venv("fresh")
    run, report = cli.install(venv, "--require-hashes", "-r", reqs)

    assert run.code == 0, run.err
    assert report["secinstall"]["resolver"] == "pinned"
    assert installed(report) == {
        "app": ("1.0", sha256(project["app"].read_bytes())),
        "lib": ("2.0", sha256(project["lib-2.0"].read_bytes())),
        "util": ("1.0", sha256(project["util"].read_bytes())),
    }
    assert all("pin" in item["secinstall"]["hash_sources"] for item in report["install"])


# --- 2. a pylock.toml written by pip --------------------------------------------------------


def pip_lock(tmp: Path, *args: str | Path) -> Path:
    """`pip lock ARGS -o TMP/pylock.toml` with no pip configuration; the lock's path."""
    lock = tmp / "pylock.toml"
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "lock", "--quiet", "-o", str(lock), *map(str, args)],
        capture_output=True, text=True, check=False, env=env, cwd=tmp,
    )
    assert proc.returncode == 0, proc.stderr
    return lock


def test_lock_written_by_pip_installs(cli: Cli, project: dict[str, Path]) -> None:
    lock = pip_lock(cli.tmp, "--index-url", cli.index.url, "--cert", cli.ca_file, "app")
    data = load_toml(lock)
    assert data["created-by"] == "pip"
    Pylock.from_dict(data)
    expected = {"app": ("1.0", sha256(project["app"].read_bytes())),
                "lib": ("2.0", sha256(project["lib-2.0"].read_bytes())),
                "util": ("1.0", sha256(project["util"].read_bytes()))}
    assert locked(lock) == expected

    venv = cli.venv("fresh")
    run, report = cli.install(venv, "-r", lock, "--no-cache-dir")

    assert run.code == 0, run.err
    assert report["secinstall"]["resolver"] == "lock"
    assert installed(report) == expected
    assert dist_info_names(venv) == {"app-1.0.dist-info", "lib-2.0.dist-info",
                                     "util-1.0.dist-info"}
    assert run_in(venv, "import app, lib; print(lib.V)").stdout == "2.0\n"


@pytest.mark.network
def test_lock_written_by_pip_from_pypi_installs(cli: Cli) -> None:
    lock = pip_lock(cli.tmp, "--index-url", "https://pypi.org/simple/", "rich")
    # {name: (version, sha256 of each wheel)}: a package may lock wheels for several platforms.
    expected = {p["name"]: (p["version"], {w["hashes"]["sha256"] for w in p["wheels"]})
                for p in load_toml(lock)["packages"]}
    assert {"rich", "pygments", "markdown-it-py", "mdurl"} <= set(expected)

    venv = cli.venv("fresh")
    run, report = cli.install(venv, "-r", lock, "--cache-dir", cli.tmp / "cache",
                              local=False)

    assert run.code == 0, run.err
    assert report["secinstall"]["resolver"] == "lock"
    got = installed(report)
    assert set(got) == set(expected)
    for name, (version, digest) in got.items():
        assert version == expected[name][0] and digest in expected[name][1], name
    shown = run_in(venv, "import rich.console; rich.console.Console().print('[b]ok[/b]')")
    assert shown.stdout.strip() == "ok", shown.stderr


# --- 3. refusals: nothing is installed --------------------------------------------------------

LOCK_HEADER = 'lock-version = "1.0"\ncreated-by = "hand"\n'


def wheel_toml(index: LocalIndex, wheel: Path, hashes: str | None = None) -> str:
    """A `[[packages.wheels]]` entry for `wheel` on the index (its sha256 unless `hashes`,
    a TOML inline table or "" for no hashes key)."""
    if hashes is None:
        hashes = f'{{sha256 = "{sha256(wheel.read_bytes())}"}}'
    line = f"hashes = {hashes}\n" if hashes else ""
    return (f'\n[[packages.wheels]]\nname = "{wheel.name}"\n'
            f'url = "{index.base_url}/files/{wheel.name}"\nsize = {wheel.stat().st_size}\n'
            + line)


def package_toml(name: str, version: str, *sources: str, keys: str = "") -> str:
    """A `[[packages]]` entry; `keys` holds more keys of the package table."""
    return f'\n[[packages]]\nname = "{name}"\nversion = "{version}"\n{keys}' + "".join(sources)


def write_lock(tmp: Path, *packages: str, header: str = "") -> Path:
    path = tmp / "pylock.toml"
    path.write_text(LOCK_HEADER + header + "".join(packages), encoding="utf-8")
    return path


def refuse(cli: Cli, venv: Venv, *args: str | Path) -> str:
    """Run `install --python VENV ARGS`, assert it is refused with the environment left
    byte for byte as it was and nothing installed; the error output."""
    before = snapshot(venv.path)
    run, report = cli.install(venv, *args)
    assert run.code == 1, run.out
    assert run.err.startswith("error: "), run.err
    assert "Traceback" not in run.err
    assert report == {}
    assert snapshot(venv.path) == before
    return run.err


def test_lock_with_a_changed_hash_refuses_the_download(
    cli: Cli, project: dict[str, Path], make_wheel: WheelMaker
) -> None:
    lock = cli.tmp / "pylock.toml"
    assert cli("lock", "--python", cli.venv("lock-target").path, "app", "-o", lock).code == 0
    genuine = sha256(project["lib-2.0"].read_bytes())
    other = sha256(make_wheel("lib", "2.0", files={"lib/__init__.py": "# other\n"}).read_bytes())
    text = lock.read_text(encoding="utf-8")
    assert text.count(genuine) == 1
    lock.write_text(text.replace(genuine, other), encoding="utf-8")
    venv = cli.venv("fresh")

    err = refuse(cli, venv, "-r", lock, "--no-cache-dir")

    assert f"{project['lib-2.0'].name} does not match the hash the lock file {lock}" in err
    assert f"says sha256:{other}, the downloaded file has sha256:{genuine}" in err
    assert f"/files/{project['lib-2.0'].name}" in cli.index.requests  # it was downloaded


@pytest.mark.parametrize(
    ("hashes", "message"),
    [
        ("", "is not a valid PEP 751 lock file: Missing required value at "
             "packages[0].wheels[0].hashes (package 'lib')"),
        ('{md5 = "0123456789abcdef0123456789abcdef"}',
         "lib: lib-2.0-py3-none-any.whl has no sha256, sha384 or sha512 hash (only md5)"),
    ],
    ids=["no-hashes-key", "only-md5"],
)
def test_lock_entry_without_a_usable_hash_is_refused(
    cli: Cli, project: dict[str, Path], hashes: str, message: str
) -> None:
    lock = write_lock(
        cli.tmp,
        package_toml("lib", "2.0", wheel_toml(cli.index, project["lib-2.0"], hashes)),
        package_toml("util", "1.0", wheel_toml(cli.index, project["util"])),
    )

    err = refuse(cli, cli.venv("fresh"), "-r", lock)

    assert f"error: {lock} " in err and message in err
    assert "util" not in err


def test_sdist_entry_is_refused(cli: Cli, project: dict[str, Path]) -> None:
    sdist = build_sdist(cli.tmp / "sdists", "lib", "2.0")
    cli.index.add(sdist)
    lock = write_lock(
        cli.tmp,
        package_toml("lib", "2.0", f'\n[packages.sdist]\nname = "{sdist.name}"\n'
                     f'url = "{cli.index.base_url}/files/{sdist.name}"\n'
                     f'hashes = {{sha256 = "{sha256(sdist.read_bytes())}"}}\n'),
        package_toml("util", "1.0", wheel_toml(cli.index, project["util"])),
    )

    err = refuse(cli, cli.venv("fresh"), "-r", lock)

    assert f"{lock}: lib 2.0 is locked only as a source distribution, {sdist.name}" in err
    assert f"/files/{sdist.name}" not in cli.index.requests  # never even downloaded


def test_wheel_only_for_another_platform_is_refused(
    cli: Cli, project: dict[str, Path], make_wheel: WheelMaker
) -> None:
    windows = make_wheel("native", "3.0", tag="cp311-cp311-win_amd64")
    cli.index.add(windows)
    lock = write_lock(
        cli.tmp,
        package_toml("native", "3.0", wheel_toml(cli.index, windows)),
        package_toml("util", "1.0", wheel_toml(cli.index, project["util"])),
    )

    err = refuse(cli, cli.venv("fresh"), "-r", lock)

    assert f"{lock}: no wheel in the lock fits the target" in err
    assert f"for native 3.0; the lock has native 3.0: {windows.name}" in err


@pytest.mark.parametrize(
    ("header", "keys", "message"),
    [
        ('requires-python = "<3.8"\n', "",
         "does not satisfy the Python version requirement '<3.8'"),
        ("", 'requires-python = ">=4"\n',
         "does not satisfy the Python version requirement '>=4' for package 'lib'"),
    ],
    ids=["whole-lock", "one-package"],
)
def test_lock_whose_requires_python_excludes_the_target_is_refused(
    cli: Cli, project: dict[str, Path], header: str, keys: str, message: str
) -> None:
    lock = write_lock(
        cli.tmp,
        package_toml("lib", "2.0", wheel_toml(cli.index, project["lib-2.0"]), keys=keys),
        package_toml("util", "1.0", wheel_toml(cli.index, project["util"])),
        header=header,
    )

    err = refuse(cli, cli.venv("fresh"), "-r", lock)

    assert f"error: {lock} can't be used for the target" in err and message in err
    assert "Python {}.{}".format(*sys.version_info[:2]) in err


# --- 4. publisher pins from the lock ------------------------------------------------------------


@pytest.fixture
def attested_lock(cli: Cli) -> Path:
    """`secinstall lock` of the real pypi-attestations 0.0.30 wheel, served with its real
    PEP 740 provenance."""
    cli.index.add(fixtures_dir() / WHEEL, provenance=fixture_bytes(WHEEL + ".provenance"),
                  upload_time="2025-06-20T18:02:11.123456Z")
    lock = cli.tmp / "pylock.toml"
    run = cli("lock", "--python", cli.venv("lock-target").path, f"{ATTESTED_PROJECT}==0.0.30",
              "--no-deps", "-o", lock)
    assert run.code == 0, run.err
    assert f"{WHEEL}: published by github:pypi/pypi-attestations" in run.out
    return lock


@pytest.mark.parametrize(
    "cache", ["same-cache", "fresh-cache"],
    ids=["same-machine-cache", "another-machine-no-cache"],
)
def test_lock_records_the_verified_publisher_and_install_honours_it(
    cli: Cli, attested_lock: Path, cache: str
) -> None:
    data = load_toml(attested_lock)
    Pylock.from_dict(data)
    (package,) = data["packages"]
    assert package["attestation-identities"] == [ATTESTED_IDENTITY]
    assert package["wheels"][0]["hashes"]["sha256"] == sha256(fixture_bytes(WHEEL))

    venv = cli.venv("fresh")
    # A lock is usually installed elsewhere (CI, another machine): with no cache, the
    # provenance must be found again from what the lock and the index say.
    no_cache = ["--no-cache-dir"] if cache == "fresh-cache" else []
    run, report = cli.install(venv, "-r", attested_lock, "--no-deps", *no_cache)

    assert run.code == 0, run.err
    (item,) = report["install"]
    assert item["secinstall"]["attestation"]["publisher"] == {
        "kind": "github", "repository": "pypi/pypi-attestations", "workflow": "release.yml",
        "environment": "pypi"}
    assert (venv.purelib / "pypi_attestations-0.0.30.dist-info").is_dir()


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('repository = "pypi/pypi-attestations"', 'repository = "evil/fork"',
         "expected github:evil/fork (workflow release.yml, environment pypi)"),
        ('workflow = "release.yml"', 'workflow = "other.yml"',
         "expected github:pypi/pypi-attestations (workflow other.yml, environment pypi)"),
    ],
    ids=["another-repository", "another-workflow"],
)
def test_lock_with_another_publisher_is_refused(
    cli: Cli, attested_lock: Path, old: str, new: str, message: str
) -> None:
    text = attested_lock.read_text(encoding="utf-8")
    assert text.count(old) == 1
    attested_lock.write_text(text.replace(old, new), encoding="utf-8")

    err = refuse(cli, cli.venv("fresh"), "-r", attested_lock, "--no-deps")

    assert f"error: {WHEEL} (provenance from {cli.index.base_url}/files/{WHEEL}.provenance" \
        in err
    assert f"publisher mismatch: {message}" in err
    assert "provenance says github:pypi/pypi-attestations (workflow release.yml, " \
        "environment pypi)" in err


# --- 5. --require-lock ------------------------------------------------------------------------


@pytest.fixture
def app_lock(cli: Cli, project: dict[str, Path]) -> Path:
    """`secinstall lock app`: app 1.0, lib 2.0, util 1.0."""
    lock = cli.tmp / "pylock.toml"
    run = cli("lock", "--python", cli.venv("lock-target").path, "app", "-o", lock)
    assert run.code == 0, run.err
    return lock


@pytest.mark.parametrize(
    ("requirements", "message"),
    [
        (["lib==1.0"], "lib 1.0 is not in {lock} (it locks 2.0)"),
        (["app", "other"], "other 1.0 is not in {lock}"),
        (["app", "lib<2"], "lib 1.0 is not in {lock} (it locks 2.0)"),
    ],
    ids=["another-version", "extra-package", "dependency-held-back"],
)
def test_require_lock_refuses_what_the_lock_does_not_pin(
    cli: Cli, app_lock: Path, make_wheel: WheelMaker, requirements: list[str], message: str
) -> None:
    cli.index.add(make_wheel("other", "1.0"))

    err = refuse(cli, cli.venv("fresh"), *requirements, "--require-lock", app_lock)

    assert f"error: --require-lock {app_lock}: {message.format(lock=app_lock)}" in err


@pytest.mark.parametrize("requirements", [["app"], ["util"]], ids=["whole-lock", "subset"])
def test_require_lock_installs_what_stays_inside_the_lock(
    cli: Cli, app_lock: Path, requirements: list[str]
) -> None:
    venv = cli.venv("fresh")

    run, report = cli.install(venv, *requirements, "--require-lock", app_lock,
                              "--no-cache-dir")

    assert run.code == 0, run.err
    assert report["secinstall"]["resolver"] == "pip"
    assert report["secinstall"]["require_hashes"] is True
    expected = {n: v for n, v in locked(app_lock).items()
                if requirements == ["app"] or n in requirements}
    assert installed(report) == expected
    assert all("pin" in item["secinstall"]["hash_sources"] for item in report["install"])
    assert dist_info_names(venv) == {f"{n}-{v}.dist-info" for n, (v, _) in expected.items()}


def test_require_lock_refuses_a_swapped_file(
    cli: Cli, app_lock: Path, project: dict[str, Path], make_wheel: WheelMaker
) -> None:
    # After locking, the index serves (and lists, with its true hash) another build of
    # lib 2.0 under the same name: only the lock's hash can tell.
    evil = make_wheel("lib", "2.0", files={"lib/__init__.py": "V = 'pwned'\n"})
    assert evil.name == project["lib-2.0"].name
    cli.index.add(evil, upload_time=UPLOADED["lib-2.0"])

    err = refuse(cli, cli.venv("fresh"), "app", "--require-lock", app_lock, "--no-cache-dir")

    assert f"error: {evil.name} does not match the pinned hashes: pinned " \
        f"sha256:{sha256(project['lib-2.0'].read_bytes())}; the file has " \
        f"sha256:{sha256(evil.read_bytes())}" in err


# --- 6. extras and dependency groups of a lock --------------------------------------------------


@pytest.fixture
def grouped_lock(cli: Cli, make_wheel: WheelMaker) -> Path:
    """A PEP 751 lock, written by hand, with an extra `fast` and the dependency groups `dev`
    (the default) and `docs`."""
    wheels = {
        "app": make_wheel("app", "1.0", requires=['speedups; extra == "fast"']),
        "speedups": make_wheel("speedups", "1.0"),
        "devtool": make_wheel("devtool", "1.0"),
        "docsgen": make_wheel("docsgen", "1.0"),
    }
    for wheel in wheels.values():
        cli.index.add(wheel)
    markers = {"app": "", "speedups": "marker = \"'fast' in extras\"\n",
               "devtool": "marker = \"'dev' in dependency_groups\"\n",
               "docsgen": "marker = \"'docs' in dependency_groups\"\n"}
    return write_lock(
        cli.tmp,
        *(package_toml(name, "1.0", wheel_toml(cli.index, wheels[name]), keys=marker)
          for name, marker in markers.items()),
        header='requires-python = ">=3.10"\nextras = ["fast"]\n'
               'dependency-groups = ["dev", "docs"]\ndefault-groups = ["dev"]\n',
    )


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ([], {"app", "devtool"}),
        (["--extra", "fast"], {"app", "devtool", "speedups"}),
        (["--group", "docs"], {"app", "docsgen"}),
        (["--extra", "Fast", "--group", "dev", "--group", "docs"],
         {"app", "devtool", "docsgen", "speedups"}),
    ],
    ids=["default-group", "extra", "group-instead-of-default", "all"],
)
def test_extras_and_groups_select_from_the_lock(
    cli: Cli, grouped_lock: Path, options: list[str], expected: set[str]
) -> None:
    venv = cli.venv("fresh")

    run, report = cli.install(venv, "-r", grouped_lock, *options)

    assert run.code == 0, run.err
    assert report["secinstall"]["resolver"] == "lock"
    assert set(installed(report)) == expected
    assert dist_info_names(venv) == {f"{name}-1.0.dist-info" for name in expected}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--extra", "turbo"], "has no extra turbo (it has: fast)"),
        (["--group", "test"], "has no dependency group test (it has: dev, docs)"),
    ],
    ids=["unknown-extra", "unknown-group"],
)
def test_unknown_extra_or_group_is_refused(
    cli: Cli, grouped_lock: Path, options: list[str], message: str
) -> None:
    err = refuse(cli, cli.venv("fresh"), "-r", grouped_lock, *options)

    assert f"error: {grouped_lock} {message}" in err


def test_lock_output_that_cant_be_written_is_refused_before_any_download(
    cli: Cli, project: dict[str, Path]
) -> None:
    missing = cli.tmp / "missing" / "pylock.toml"

    run = cli("lock", "--python", cli.venv("lock-target").path, "app", "-o", missing)

    assert run.code == 1
    assert f"error: -o/--output {missing}: the directory {missing.parent} doesn't exist" \
        in run.err
    assert not [r for r in cli.index.requests if r.startswith("/files/")]
