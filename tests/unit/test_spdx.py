"""The SPDX 2.3 document made of a CycloneDX `Bom` (`spdx.py`): licences, evidence, download
locations, SPDXIDs and third-party values of bundled SBOMs, each document read back and
validated by spdx-tools."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import Any

import pytest
from cyclonedx.model import HashAlgorithm, HashType
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from packageurl import PackageURL
from tests.support.sbom import dist, spdx_problems

from secinstall.models import AttestationEvidence, Publisher
from secinstall.sbom import environment_sbom, part
from secinstall.spdx import spdx_json
from secinstall.target import Target

Json = dict[str, Any]
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def document(*components: Component, depends: tuple[tuple[int, int], ...] = ()) -> Json:
    """The SPDX JSON of a Bom holding `components` (`depends`: edges by position), after
    spdx-tools has parsed it back and found nothing wrong."""
    bom = Bom(components=components)
    bom.metadata.timestamp = WHEN
    for source, target in depends:
        bom.register_dependency(components[source], [components[target]])
    data: Json = json.loads(spdx_json(bom, name="test"))
    assert spdx_problems(data) == []
    return data


def package(meta: Json | None = None, **options: Any) -> Json:
    """The package of a distribution `demo 1.0` as an install's fragment has it."""
    v, info = dist("demo", "1.0", meta=meta, **options)
    (only,) = document(part(v, info.metadata, (), ([], [])).component)["packages"]
    result: Json = only
    return result


@pytest.mark.parametrize(("meta", "declared", "comment"), [
    ({"license_expression": "mit or apache-2.0"}, "MIT OR Apache-2.0", None),
    ({"license_expression": "GPL-2.0-only WITH Classpath-exception-2.0"},
     "GPL-2.0-only WITH Classpath-exception-2.0", None),
    ({"classifier": ["License :: OSI Approved :: MIT License",
                     "License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)"]},
     "MIT AND MPL-2.0", None),
    ({"license": "MIT"}, "MIT", None),
    # Not on the SPDX list, and no extracted licensing info says what it is.
    ({"license_expression": "LicenseRef-Acme-Proprietary"}, "NOASSERTION",
     "declared, not valid SPDX: LicenseRef-Acme-Proprietary"),
    ({"classifier": ["License :: OSI Approved :: MIT License",
                     "License :: OSI Approved :: BSD License"]}, "NOASSERTION",
     "declared, not valid SPDX: MIT; BSD License"),
    ({"license": "Apache License, Version 2.0"}, "NOASSERTION",
     "declared, not valid SPDX: Apache License, Version 2.0"),
    ({}, "NOASSERTION", None),
], ids=["expression", "with-exception", "classifiers-and", "legacy-id", "licenseref",
        "a-classifier-name", "free-text", "none"])
def test_declared_licence(meta: Json, declared: str, comment: str | None) -> None:
    found = package(meta)
    assert found["licenseDeclared"] == declared
    assert found["licenseConcluded"] == "NOASSERTION"
    assert found.get("licenseComments") == comment


def test_evidence_identity_and_people() -> None:
    evidence = AttestationEvidence(
        filename="demo-1.0-py3-none-any.whl", sha256="ab" * 32,
        publisher=Publisher("github", "acme/demo", workflow="release.yml"),
        identity="https://github.com/acme/demo/.github/workflows/release.yml@refs/tags/v1",
        issuer="https://token.actions.githubusercontent.com",
        predicate_type="https://docs.pypi.org/attestations/publish/v1", rekor_log_index=7,
        integrated_time=0, instance="production", trust_root="embedded")
    found = package({"summary": "A demo.", "author": "Ann, Bob",
                     "author_email": "ann@example.org, bob@example.org",
                     "maintainer_email": "Acme <pkg@acme.example>",
                     "home_page": "https://demo.example.org/"},
                    sha256="ab" * 32, attestation=evidence)
    assert found["SPDXID"] == "SPDXRef-Package-demo-1.0"
    assert found["downloadLocation"] == \
        "https://files.example.org/demo-1.0-py3-none-any.whl"
    assert found["checksums"] == [{"algorithm": "SHA256", "checksumValue": "ab" * 32}]
    assert found["homepage"] == "https://demo.example.org/"
    assert found["summary"] == "A demo."
    assert found["supplier"] == "Organization: Acme (pkg@acme.example)"
    assert found["originator"] == "Person: Ann, Bob"  # two addresses: SPDX takes one
    lines = found["comment"].splitlines()
    assert "distribution=" not in found["comment"]  # it is the download location
    for line in ("secinstall:attestation=verified", "secinstall:hash-sources=index",
                 "secinstall:attestation:publisher=github:acme/demo",
                 "secinstall:attestation:publisher:workflow=release.yml",
                 "secinstall:attestation:rekor-log-index=7"):
        assert line in lines


def bundled(name: str, version: str | None = "1", **options: Any) -> Component:
    return Component(name=name, version=version, **options)


def test_bundled_components_and_their_third_party_values() -> None:
    """Names SPDXIDs can't hold, two that read the same there, hashes SPDX doesn't know or
    its validator refuses: a valid document all the same, with unique, stable SPDXIDs."""
    outer = bundled("outer", "2.0", type=ComponentType.APPLICATION)
    outer.components.update([
        bundled("c lib", purl=PackageURL("generic", name="c-lib", version="1")),
        bundled("c+lib", type=ComponentType.FIRMWARE, hashes=[
            HashType(alg=HashAlgorithm.SHA_1, content="AB" * 20),
            HashType(alg=HashAlgorithm.STREEBOG_256, content="ab" * 32),
            HashType(alg=HashAlgorithm.SHA_256, content="not a hash")]),
        bundled("no version", version=None, type=ComponentType.DATA)])
    other = bundled("other")

    first = document(outer, other, depends=((0, 1),))

    packages = {p["name"]: p for p in first["packages"]}
    assert [p["SPDXID"] for p in first["packages"]] == [
        "SPDXRef-Package-other-1", "SPDXRef-Package-outer-2.0",
        "SPDXRef-Package-outer-2.0-c-lib-1", "SPDXRef-Package-outer-2.0-c-lib-1-2",
        "SPDXRef-Package-outer-2.0-no-version"]
    assert all(re.fullmatch(r"SPDXRef-[A-Za-z0-9.-]+", p["SPDXID"]) for p in packages.values())
    assert packages["c+lib"]["checksums"] == [{"algorithm": "SHA1", "checksumValue": "ab" * 20}]
    assert packages["c+lib"]["primaryPackagePurpose"] == "FIRMWARE"
    assert packages["outer"]["primaryPackagePurpose"] == "APPLICATION"
    assert packages["no version"]["primaryPackagePurpose"] == "OTHER"
    assert "versionInfo" not in packages["no version"]
    assert packages["c lib"]["externalRefs"][0]["referenceLocator"] == "pkg:generic/c-lib@1"
    relations = {(r["spdxElementId"], r["relationshipType"], r["relatedSpdxElement"])
                 for r in first["relationships"]}
    assert ("SPDXRef-Package-outer-2.0", "DEPENDS_ON", "SPDXRef-Package-other-1") in relations
    assert sorted(r for r in relations if r[1] == "CONTAINS") == [
        ("SPDXRef-Package-outer-2.0", "CONTAINS", f"SPDXRef-Package-outer-2.0-{i}")
        for i in ("c-lib-1", "c-lib-1-2", "no-version")]
    assert {r for r in relations if r[1] == "DESCRIBES"} == {
        ("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Package-outer-2.0"),
        ("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Package-other-1")}


def test_an_empty_environment_is_a_valid_document_describing_none(target: Target) -> None:
    data = json.loads(environment_sbom(target, fmt="spdx-json"))
    assert spdx_problems(data) == []
    assert data.get("packages", []) == []
    assert data["relationships"] == [{"spdxElementId": "SPDXRef-DOCUMENT",
                                      "relationshipType": "DESCRIBES",
                                      "relatedSpdxElement": "NONE"}]
    assert data["name"] == f"secinstall environment {target.root}"
    assert "secinstall:target:kind=target" in data["comment"].splitlines()
