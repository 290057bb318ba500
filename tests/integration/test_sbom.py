"""SBOMs of real installs: the fragment each install writes, and the environment's SBOM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import parse_wheel_filename

from secinstall.sbom import environment_sbom
from secinstall.target import resolve_target
from tests.conftest import Venv
from tests.support.cli import Secinstall, pip_install, sha256
from tests.support.index import LocalIndex
from tests.support.pep740 import WHEEL, fixture_bytes, fixtures_dir, sha256_of
from tests.support.sbom import BUNDLED, metadata, piponly_wheel, schema_errors
from tests.support.snapshot import snapshot
from tests.support.wheels import WheelMaker

Json = dict[str, Any]

def fragments(venv: Venv) -> list[Path]:
    folder = venv.path / ".secinstall" / "sbom"
    return sorted(folder.iterdir()) if folder.is_dir() else []


def load(text: str) -> Json:
    """Parse an SBOM after checking it against the CycloneDX 1.6 schema."""
    errors = schema_errors(text)
    assert errors is None, errors
    document: Json = json.loads(text)
    return document


def env_sbom(venv: Venv) -> Json:
    return load(environment_sbom(resolve_target(str(venv.python))))


def by_name(document: Json) -> dict[str, Json]:
    return {c["name"]: c for c in document.get("components", [])}


def props(comp: Json) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for p in comp.get("properties", []):
        found.setdefault(p["name"], []).append(p["value"])
    return found


def graph(document: Json) -> set[tuple[str, str]]:
    """Dependency edges as (name, name)."""
    names = {c["bom-ref"]: c["name"] for c in document.get("components", [])}
    return {(names[d["ref"]], names[t]) for d in document.get("dependencies", [])
            for t in d.get("dependsOn", [])}


def installed(venv: Venv) -> set[tuple[str, str]]:
    found = set()
    for d in venv.purelib.glob("*.dist-info"):
        name, _, version = d.name.removesuffix(".dist-info").partition("-")
        found.add((name, version))
    return found


@pytest.fixture
def app_lib_speed(index: LocalIndex, make_wheel: WheelMaker) -> dict[str, Path]:
    """app requires lib[fast] (and a dependency for another platform); lib's extra `fast`
    requires speed."""
    wheels = {
        "app": make_wheel("app", "1.0", requires=[
            "lib[fast]>=1", "never; sys_platform == 'no-such-platform'"]),
        "lib": make_wheel("lib", "1.0", extra_dist_info={"METADATA": metadata(
            "lib", "1.0", "License-Expression: MIT", "Provides-Extra: fast",
            "Requires-Dist: speed; extra == 'fast'")}),
        "speed": make_wheel("speed", "2.0"),
        "never": make_wheel("never", "1.0"),
    }
    for wheel in wheels.values():
        index.add(wheel)
    return wheels


# --- the fragment of one install ---------------------------------------------------------------


@pytest.mark.parametrize("resolver", ["pip", "pinned"])
def test_fragment_lists_exactly_what_was_installed(
    secinstall: Secinstall, venv: Venv, app_lib_speed: dict[str, Path], resolver: str
) -> None:
    wheels = [app_lib_speed[n] for n in ("app", "lib", "speed")]
    args = ["app"] if resolver == "pip" else list(map(str, secinstall.pinned(*wheels)))

    run = secinstall("-v", "--python", venv.path, *args)

    assert run.code == 0, run.err
    # Made by its own process, while the files were verified and linked (not again here).
    assert "fragment's process didn't make it" not in run.err + run.out
    (path,) = fragments(venv)
    assert path.name.endswith(".cdx.json") and not path.name.startswith(".")
    document = load(path.read_text(encoding="utf-8"))
    components = by_name(document)
    assert {(c["name"], c["version"]) for c in components.values()} == installed(venv) == {
        ("app", "1.0"), ("lib", "1.0"), ("speed", "2.0")}
    for wheel in wheels:
        name, version, _, _ = parse_wheel_filename(wheel.name)
        comp = components[name]
        assert comp["hashes"] == [{"alg": "SHA-256", "content": sha256(wheel)}]
        assert comp["purl"] == f"pkg:pypi/{name}@{version}?file_name={wheel.name}"
        assert {"type": "distribution", "url": f"{secinstall.index.base_url}/files/{wheel.name}"} \
            in comp["externalReferences"]
        found = props(comp)
        assert found["secinstall:hash-sources"] == (
            ["index"] if resolver == "pip" else ["index,pin"])
        assert found["secinstall:attestation"] == ["no provenance"]
    assert components["lib"]["licenses"] == [
        {"license": {"id": "MIT", "acknowledgement": "declared"}}]
    assert graph(document) == {("app", "lib"), ("lib", "speed")}
    meta = props(document["metadata"])
    assert meta["secinstall:target:root"] == [str(venv.path)]
    assert meta["secinstall:index-url"] == [secinstall.index.url]
    assert meta["secinstall:resolver"] == [resolver]


def test_rolled_back_install_leaves_no_fragment(
    secinstall: Secinstall, venv: Venv, make_wheel: WheelMaker
) -> None:
    # A plain file where the wheel's package directory goes: installing it fails midway.
    (venv.purelib / "collide").write_text("a file no distribution owns\n")
    good = make_wheel("good", "1.0")
    other = make_wheel("other", "1.0")
    bad = make_wheel("bad", "1.0", files={"collide/__init__.py": "X = 1\n"})
    for wheel in (good, other, bad):
        secinstall.index.add(wheel)
    state = venv.path / ".secinstall"

    first = secinstall("--python", venv.path, *secinstall.pinned(other, bad))

    assert first.code == 1 and "rolled back" in first.err
    assert not (state / "sbom").exists()
    assert secinstall("--python", venv.path, *secinstall.pinned(good)).code == 0
    before = snapshot(venv.path)
    (kept,) = fragments(venv)

    again = secinstall("--python", venv.path, *secinstall.pinned(other, bad))

    assert again.code == 1 and "rolled back" in again.err
    assert fragments(venv) == [kept]
    assert snapshot(venv.path) == before
    assert set(by_name(env_sbom(venv))) == {"good"}


# --- PEP 770: SBOMs shipped inside wheels ------------------------------------------------------


def test_bundled_sbom_installed_unchanged_and_nested(
    secinstall: Secinstall, venv: Venv, make_wheel: WheelMaker
) -> None:
    wheel = make_wheel("vendored", "1.0", extra_dist_info={"sboms/bundled.cdx.json": BUNDLED})
    secinstall.index.add(wheel)

    assert secinstall("--python", venv.path, *secinstall.pinned(wheel)).code == 0

    shipped = venv.purelib / "vendored-1.0.dist-info" / "sboms" / "bundled.cdx.json"
    assert shipped.read_bytes() == BUNDLED
    (path,) = fragments(venv)
    for document in (load(path.read_text(encoding="utf-8")), env_sbom(venv)):
        comp = by_name(document)["vendored"]
        assert {(c["name"], c["version"], c.get("purl")) for c in comp["components"]} == {
            ("zlib", "1.3.1", "pkg:generic/zlib@1.3.1"),
            ("openssl", "3.0.15", "pkg:generic/openssl@3.0.15")}
        assert props(comp)["secinstall:bundled-sbom"] == ["sboms/bundled.cdx.json"]


# --- the environment's SBOM ----------------------------------------------------------------------


def test_upgrade_supersedes_the_older_fragment(
    secinstall: Secinstall, venv: Venv, make_wheel: WheelMaker
) -> None:
    app = make_wheel("app", "1.0", requires=["lib>=1"])
    lib1, lib2 = make_wheel("lib", "1.0"), make_wheel("lib", "2.0")
    for wheel in (app, lib1, lib2):
        secinstall.index.add(wheel)
    assert secinstall("--python", venv.path, *secinstall.pinned(app, lib1)).code == 0

    assert secinstall("--python", venv.path, *secinstall.pinned(lib2)).code == 0

    older, newer = fragments(venv)
    assert {c["version"] for c in load(older.read_text())["components"] if c["name"] == "lib"} \
        == {"1.0"}
    assert props(load(newer.read_text())["metadata"])["secinstall:removed"] == ["lib==1.0"]
    document = env_sbom(venv)
    assert sorted((c["name"], c["version"]) for c in document["components"]) == [
        ("app", "1.0"), ("lib", "2.0")]
    lib = by_name(document)["lib"]
    assert lib["hashes"] == [{"alg": "SHA-256", "content": sha256(lib2)}]
    assert props(lib)["secinstall:verified"] == ["true"]
    assert props(lib)["secinstall:fragment"] == [newer.name]
    assert props(by_name(document)["app"])["secinstall:fragment"] == [older.name]
    assert graph(document) == {("app", "lib")}


def test_distributions_not_installed_by_secinstall_are_unverified(
    secinstall: Secinstall, venv: Venv, make_wheel: WheelMaker, tmp_path: Path
) -> None:
    verified = make_wheel("verified", "1.0", requires=["piponly"])
    lib = make_wheel("lib", "1.0")
    links = tmp_path / "links"
    links.mkdir()
    piponly = piponly_wheel(make_wheel)
    for wheel in (piponly, lib):
        (links / wheel.name).write_bytes(wheel.read_bytes())
    for wheel in (verified, lib):
        secinstall.index.add(wheel)
    assert secinstall("--python", venv.path, "--no-deps",
                      *secinstall.pinned(verified, lib)).code == 0
    assert pip_install(venv, "--no-index", "--find-links", links, "--no-compile",
                       "piponly").returncode == 0
    # pip reinstalling the same version over secinstall's: the fragment no longer vouches for it.
    assert pip_install(venv, "--no-index", "--find-links", links, "--no-compile",
                       "--force-reinstall", "--no-deps", "lib==1.0").returncode == 0

    document = env_sbom(venv)

    components = by_name(document)
    assert set(components) == {"verified", "piponly", "lib"}
    assert props(components["verified"])["secinstall:verified"] == ["true"]
    assert components["verified"]["hashes"] == [{"alg": "SHA-256", "content": sha256(verified)}]
    for name in ("piponly", "lib"):
        comp = components[name]
        found = props(comp)
        assert found["secinstall:verified"] == ["false"]
        assert found["secinstall:installer"] == ["pip"]
        assert found["secinstall:file-hash"] == [
            "unknown: not installed by secinstall (INSTALLER: pip)"]
        assert "hashes" not in comp
        assert "secinstall:attestation" not in found
    pip_only = components["piponly"]
    assert pip_only["purl"] == "pkg:pypi/piponly@3.1"
    assert pip_only["licenses"] == [
        {"license": {"id": "BSD-3-Clause", "acknowledgement": "declared"}}]
    assert pip_only["authors"] == [{"name": "Pip Only", "email": "pip@example.org"}]
    assert {c["name"] for c in pip_only["components"]} == {"zlib", "openssl"}
    assert graph(document) == {("verified", "piponly")}


def test_attested_distribution_with_its_publisher(
    index: LocalIndex, ca_file: Path, venv: Venv, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    index.add(fixtures_dir() / WHEEL, provenance=fixture_bytes(WHEEL + ".provenance"))
    secinstall = Secinstall(index, ca_file, tmp_path, capsys)
    pins = secinstall.requirements(
        f"pypi-attestations==0.0.30 --hash=sha256:{sha256_of(fixture_bytes(WHEEL))}")

    run = secinstall("--python", venv.path, "-r", pins, "--no-deps")

    assert run.code == 0, run.err
    for document in (load(fragments(venv)[0].read_text()), env_sbom(venv)):
        comp = by_name(document)["pypi-attestations"]
        assert comp["version"] == "0.0.30"
        assert comp["hashes"] == [{"alg": "SHA-256", "content": sha256_of(fixture_bytes(WHEEL))}]
        found = props(comp)
        assert found["secinstall:attestation"] == ["verified"]
        assert found["secinstall:attestation:publisher"] == ["github:pypi/pypi-attestations"]
        assert found["secinstall:attestation:issuer"] == [
            "https://token.actions.githubusercontent.com"]
        assert {"type": "vcs", "url": "https://github.com/pypi/pypi-attestations",
                "comment": "source repository of the verified Trusted Publisher"} \
            in comp["externalReferences"]
        assert comp["licenses"] == [{"license": {"id": "Apache-2.0",
                                                 "acknowledgement": "declared"}}]
        assert comp["supplier"]["name"] == "PyPI Admins"
    assert props(comp)["secinstall:verified"] == ["true"]
