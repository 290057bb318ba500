"""`secinstall sbom --format spdx-json` after real installs: the SPDX 2.3 document, read
back and validated by spdx-tools, says what the CycloneDX one says; and without
spdx-tools, a clear refusal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import parse_wheel_filename

import secinstall as secinstall_package
from secinstall import __version__
from tests.conftest import Venv
from tests.support.cli import Run, Secinstall, pip_install, run_cli, sha256
from tests.support.sbom import BUNDLED, metadata, piponly_wheel, spdx_problems
from tests.support.wheels import WheelMaker

Json = dict[str, Any]
#: Where the secinstall under test is imported from, for the CLI run in a subprocess.
SRC = Path(secinstall_package.__file__).resolve().parents[1]


@pytest.fixture
def environment(secinstall: Secinstall, venv: Venv, make_wheel: WheelMaker,
                tmp_path: Path) -> dict[str, Path]:
    """app requires lib[fast] and piponly; lib's extra `fast` requires speed; vendored
    bundles a PEP 770 SBOM. secinstall installs all but piponly, which pip installs (with
    a licence, an author and a bundled SBOM of its own)."""
    wheels = {
        "app": make_wheel("app", "1.0", requires=["lib[fast]>=1", "piponly"]),
        "lib": make_wheel("lib", "1.0", extra_dist_info={"METADATA": metadata(
            "lib", "1.0", "License-Expression: MIT", "Provides-Extra: fast",
            "Requires-Dist: speed; extra == 'fast'")}),
        "speed": make_wheel("speed", "2.0"),
        "vendored": make_wheel("vendored", "1.0",
                               extra_dist_info={"sboms/bundled.cdx.json": BUNDLED}),
    }
    for wheel in wheels.values():
        secinstall.index.add(wheel)
    assert secinstall("--python", venv.path, "--no-deps",
                      *secinstall.pinned(*wheels.values())).code == 0
    links = tmp_path / "links"
    links.mkdir()
    piponly = piponly_wheel(make_wheel)
    (links / piponly.name).write_bytes(piponly.read_bytes())
    assert pip_install(venv, "--no-index", "--find-links", links, "--no-compile",
                       "piponly").returncode == 0
    return wheels


def sbom(secinstall: Secinstall, venv: Venv, *args: str) -> Run:
    return run_cli(secinstall.index, secinstall.ca_file, secinstall.tmp, secinstall.capsys,
                   ["sbom", "--python", str(venv.path), "--format", "spdx-json", *args],
                   local=False)


def read_valid(path: Path) -> Json:
    """The document in `path`, after spdx-tools has parsed it and found nothing wrong."""
    document: Json = json.loads(path.read_text(encoding="utf-8"))
    assert spdx_problems(document) == []
    return document


def comment(package: Json) -> dict[str, str]:
    return dict(line.split("=", 1) for line in package.get("comment", "").splitlines())


def test_spdx_document_of_a_real_environment(
    secinstall: Secinstall, venv: Venv, environment: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "env.spdx.json"

    run = sbom(secinstall, venv, "-o", str(out))

    assert run.code == 0, run.err
    assert f"wrote spdx-json SBOM of {venv.path} to {out}" in run.out
    document = read_valid(out)
    assert document["spdxVersion"] == "SPDX-2.3"
    assert document["dataLicense"] == "CC0-1.0"
    assert document["creationInfo"]["creators"] == [f"Tool: secinstall-{__version__}"]
    assert f"secinstall:target:root={venv.path}" in document["comment"].splitlines()
    packages = {p["SPDXID"]: p for p in document["packages"]}
    name_of = {i: p["name"] for i, p in packages.items()}
    ids = {p["name"]: i for i, p in packages.items() if i.startswith("SPDXRef-Package-")
           and p["name"] not in ("zlib", "openssl")}
    assert set(ids) == {"app", "lib", "speed", "vendored", "piponly"}
    relations = {(name_of.get(r["spdxElementId"], r["spdxElementId"]), r["relationshipType"],
                  name_of[r["relatedSpdxElement"]]) for r in document["relationships"]}
    assert {(a, b) for a, kind, b in relations if kind == "DESCRIBES"} == {
        ("SPDXRef-DOCUMENT", n) for n in ids}
    assert {(a, b) for a, kind, b in relations if kind == "DEPENDS_ON"} == {
        ("app", "lib"), ("app", "piponly"), ("lib", "speed")}
    assert {(a, b) for a, kind, b in relations if kind == "CONTAINS"} == {
        (parent, child) for parent in ("vendored", "piponly") for child in ("zlib", "openssl")}

    for name, wheel in environment.items():
        package = packages[ids[name]]
        _, version, _, _ = parse_wheel_filename(wheel.name)
        assert package["versionInfo"] == str(version)
        assert package["checksums"] == [{"algorithm": "SHA256",
                                         "checksumValue": sha256(wheel)}]
        assert package["externalRefs"] == [{
            "referenceCategory": "PACKAGE_MANAGER", "referenceType": "purl",
            "referenceLocator": f"pkg:pypi/{name}@{version}?file_name={wheel.name}"}]
        assert package["filesAnalyzed"] is False
        assert package["primaryPackagePurpose"] == "LIBRARY"
        evidence = comment(package)
        assert evidence["secinstall:verified"] == "true"
        assert evidence["secinstall:hash-sources"] == "index,pin"
        assert evidence["secinstall:attestation"] == "no provenance"
        # 127.0.0.1 is no download location to SPDX: the URL is kept in the comment.
        assert package["downloadLocation"] == "NOASSERTION"
        assert evidence["distribution"] == f"{secinstall.index.base_url}/files/{wheel.name}"
    assert packages[ids["lib"]]["licenseDeclared"] == "MIT"
    assert packages[ids["app"]]["licenseDeclared"] == "NOASSERTION"

    piponly = packages[ids["piponly"]]
    assert "checksums" not in piponly
    assert comment(piponly) == {
        "secinstall:verified": "false", "secinstall:installer": "pip",
        "secinstall:file-hash": "unknown: not installed by secinstall (INSTALLER: pip)",
        "secinstall:bundled-sbom": "sboms/bundled.cdx.json"}
    assert piponly["licenseDeclared"] == "BSD-3-Clause"
    assert piponly["originator"] == "Person: Pip Only (pip@example.org)"
    assert piponly["externalRefs"][0]["referenceLocator"] == "pkg:pypi/piponly@3.1"
    bundled = {(name_of[r["spdxElementId"]], packages[c]["name"], packages[c]["versionInfo"],
                packages[c]["externalRefs"][0]["referenceLocator"])
               for r in document["relationships"] if r["relationshipType"] == "CONTAINS"
               for c in [r["relatedSpdxElement"]]}
    assert ("vendored", "zlib", "1.3.1", "pkg:generic/zlib@1.3.1") in bundled
    assert ("piponly", "openssl", "3.0.15", "pkg:generic/openssl@3.0.15") in bundled


def without_run_metadata(document: Json) -> Json:
    document = dict(document)
    assert document.pop("documentNamespace").startswith("urn:uuid:")
    document["creationInfo"] = {k: v for k, v in document["creationInfo"].items()
                                if k != "created"}
    return document


def test_same_environment_same_document_but_namespace_and_time(
    secinstall: Secinstall, venv: Venv, environment: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "first.spdx.json"
    assert sbom(secinstall, venv, "-o", str(out)).code == 0

    printed = sbom(secinstall, venv)

    assert printed.code == 0, printed.err
    first, second = read_valid(out), json.loads(printed.out)
    assert first["documentNamespace"] != second["documentNamespace"]
    assert without_run_metadata(first) == without_run_metadata(second)
    assert out.read_text(encoding="utf-8") != printed.out


BLOCK_SPDX_TOOLS = """\
import sys
from importlib.abc import MetaPathFinder

class NoSpdxTools(MetaPathFinder):
    # As if spdx-tools were not installed: secinstall without its extra `spdx`.
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "spdx_tools":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoSpdxTools())
sys.argv[0] = "secinstall"
from secinstall.cli import run
run()
"""


def test_without_spdx_tools_a_clear_error_and_no_output(venv: Venv, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC),
                                                       os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-c", BLOCK_SPDX_TOOLS, "sbom", "--python", str(venv.python)]
    out = tmp_path / "env.spdx.json"

    refused = subprocess.run([*command, "--format", "spdx-json", "-o", str(out)],
                             capture_output=True, text=True, env=env, check=False)

    assert refused.returncode == 1, refused.stderr
    assert "spdx-tools, which is not installed" in refused.stderr
    assert "pip install 'secinstall[spdx]'" in refused.stderr
    assert "Traceback" not in refused.stderr and refused.stdout == ""
    assert not out.exists() and list(tmp_path.iterdir()) == [venv.path]
    # Only SPDX needs the extra: the same interpreter still writes CycloneDX.
    cyclonedx = subprocess.run([*command, "--format", "cyclonedx-json"], capture_output=True,
                               text=True, env=env, check=False)
    assert cyclonedx.returncode == 0, cyclonedx.stderr
    assert json.loads(cyclonedx.stdout)["specVersion"] == "1.6"
