"""The CycloneDX fragment of an install: licences, purls, evidence, dependency edges, schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import default_environment
from packaging.utils import NormalizedName
from tests.support.pep740 import WHEEL, fixture_bytes, provenance_json, sha256_of, verify
from tests.support.sbom import INDEX, dist, outcome, schema_errors

from secinstall.errors import ConfigError
from secinstall.models import AttestationEvidence, InstalledDist, Publisher
from secinstall.pipeline import Outcome
from secinstall.sbom import dependency_edges, environment_sbom, fragment_json, write_fragment
from secinstall.target import Target
from secinstall.transaction import Transaction

Json = dict[str, Any]
GITLAB = AttestationEvidence(
    filename="glab-1.0-py3-none-any.whl", sha256="ab" * 32,
    publisher=Publisher("gitlab", "acme/glab", workflow=".gitlab-ci.yml"),
    identity="https://gitlab.com/acme/glab//.gitlab-ci.yml@refs/tags/v1.0",
    issuer="https://gitlab.com", predicate_type="https://docs.pypi.org/attestations/publish/v1",
    rekor_log_index=123456789, integrated_time=1735689600, instance="production",
    trust_root="embedded",
)


def fragment_text(result: Outcome, indexes: Sequence[str] = (INDEX,)) -> str:
    return fragment_json(result, indexes=indexes)


def fragment(result: Outcome, indexes: Sequence[str] = (INDEX,)) -> Json:
    document: Json = json.loads(fragment_text(result, indexes))
    return document


def component(target: Target, meta: Json, **options: Any) -> Json:
    """The one component of a fragment holding one distribution `demo 1.0` with `meta`."""
    (only,) = fragment(outcome(target, dist("demo", "1.0", meta=meta, **options)))["components"]
    result: Json = only
    return result


def props(comp: Json) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for p in comp.get("properties", []):
        found.setdefault(p["name"], []).append(p["value"])
    return found


def refs(comp: Json) -> set[tuple[str, str]]:
    return {(r["type"], r["url"]) for r in comp.get("externalReferences", [])}


# --- licences -------------------------------------------------------------------------------

MIT_TEXT = ("Permission is hereby granted, free of charge, to any person obtaining a copy of "
            "this software and associated documentation files (the \"Software\"), to deal in "
            "the Software without restriction, including without limitation the rights\nto "
            "use, copy, modify, merge, publish, distribute, sublicense, and/or sell copies")

LICENCES: dict[str, tuple[Json, list[Json]]] = {
    "expression": (
        {"license_expression": "mit or apache-2.0", "license": "whatever",
         "classifier": ["License :: OSI Approved :: MIT License"]},
        [{"expression": "MIT OR Apache-2.0", "acknowledgement": "declared"}],
    ),
    "expression-single-id": (
        {"license_expression": "Apache-2.0"},
        [{"license": {"id": "Apache-2.0", "acknowledgement": "declared"}}],
    ),
    "expression-licenseref": (
        {"license_expression": "LicenseRef-Acme-Proprietary"},
        [{"expression": "LicenseRef-Acme-Proprietary", "acknowledgement": "declared"}],
    ),
    "expression-invalid-kept-as-name": (
        {"license_expression": "Acme Licence v2"},
        [{"license": {"name": "Acme Licence v2", "acknowledgement": "declared"}}],
    ),
    "classifiers": (
        {"classifier": ["Programming Language :: Python :: 3",
                        "License :: OSI Approved :: MIT License",
                        "License :: OSI Approved :: GNU Lesser General Public License v3 or "
                        "later (LGPLv3+)",
                        "License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)"],
         "license": "see LICENSE"},
        [{"license": {"id": i, "acknowledgement": "declared"}}
         for i in ("LGPL-3.0-or-later", "MIT", "MPL-2.0")],
    ),
    "apache-classifier-stays-a-name": (
        # A family (1.0, 1.1, 2.0): the SBOM says what was declared, not what it likely means.
        {"classifier": ["License :: OSI Approved :: Apache Software License"]},
        [{"license": {"name": "Apache Software License", "acknowledgement": "declared"}}],
    ),
    "classifier-of-a-family-stays-a-name": (
        {"classifier": ["License :: OSI Approved :: BSD License"]},
        [{"license": {"name": "BSD License", "acknowledgement": "declared"}}],
    ),
    "bare-osi-classifier-falls-through-to-text": (
        {"classifier": ["License :: OSI Approved"], "license": "BSD-3-Clause"},
        [{"license": {"id": "BSD-3-Clause", "acknowledgement": "declared"}}],
    ),
    "free-text": (
        {"license": "Apache License, Version 2.0"},
        [{"license": {"name": "Apache License, Version 2.0", "acknowledgement": "declared"}}],
    ),
    "free-text-full-licence-truncated": (
        {"license": MIT_TEXT},
        [{"license": {"name": " ".join(MIT_TEXT.split())[:197] + "...",
                      "acknowledgement": "declared"}}],
    ),
    "unknown": ({"license": "UNKNOWN"}, []),
    "none": ({}, []),
}


@pytest.mark.parametrize("case", list(LICENCES))
def test_licence(target: Target, case: str) -> None:
    meta, expected = LICENCES[case]
    comp = component(target, meta)
    assert sorted(comp.get("licenses", []), key=json.dumps) == sorted(expected, key=json.dumps)


# --- identity: name, purl, hash, people, links -----------------------------------------------

@pytest.mark.parametrize(("name", "version", "purl"), [
    ("Foo_Bar", "1.0", "pkg:pypi/foo-bar@1.0?file_name=foo_bar-1.0-py3-none-any.whl"),
    ("demo", "2.0+local.1",
     "pkg:pypi/demo@2.0%2Blocal.1?file_name=demo-2.0%2Blocal.1-py3-none-any.whl"),
], ids=["normalised-name", "local-version"])
def test_purl_and_hash(target: Target, name: str, version: str, purl: str) -> None:
    sha = "9f" * 32
    (comp,) = fragment(outcome(target, dist(name, version, sha256=sha)))["components"]
    assert comp["purl"] == purl
    assert comp["bom-ref"] == purl
    assert (comp["name"], comp["version"], comp["type"]) == (name, version, "library")
    assert comp["hashes"] == [{"alg": "SHA-256", "content": sha}]


def test_people_and_links(target: Target) -> None:
    comp = component(target, {
        "summary": "A demo",
        "author": "Jane Doe, Bob",
        "author_email": '"Jane Doe" <jane@example.org>, bob@example.org',
        "maintainer": "Ops Team",
        "maintainer_email": "ops@example.org",
        "home_page": "https://demo.example.org/",
        "project_url": ["Source Code, https://github.com/acme/demo",
                        "Bug Tracker, https://github.com/acme/demo/issues",
                        "Docs, https://docs.example.org/demo",
                        "Funding, https://example.org/fund",
                        "Homepage, not a url"],
    })
    assert comp["description"] == "A demo"
    assert sorted(comp["authors"], key=json.dumps) == sorted(
        [{"name": "Jane Doe", "email": "jane@example.org"},
         {"name": "Bob", "email": "bob@example.org"}], key=json.dumps)
    assert comp["supplier"] == {"name": "Ops Team", "contact": [{"name": "Ops Team",
                                                                 "email": "ops@example.org"}]}
    assert refs(comp) == {
        ("distribution", "https://files.example.org/demo-1.0-py3-none-any.whl"),
        ("website", "https://demo.example.org/"),
        ("vcs", "https://github.com/acme/demo"),
        ("issue-tracker", "https://github.com/acme/demo/issues"),
        ("documentation", "https://docs.example.org/demo"),
    }


@pytest.mark.parametrize(("author", "email", "expected"), [
    ("UNKNOWN", "UNKNOWN", None),
    ("Someone", "not-an-address", [{"name": "Someone"}]),
    ("", "Team <team@example.org>, other@example.org",
     [{"name": "Team", "email": "team@example.org"}, {"email": "other@example.org"}]),
    ("", "", None),
], ids=["unknown", "bad-address", "addresses-only", "nobody"])
def test_authors_edge_cases(target: Target, author: str, email: str,
                            expected: list[Json] | None) -> None:
    comp = component(target, {"author": author, "author_email": email})
    if expected is None:
        assert "authors" not in comp and "supplier" not in comp
    else:
        assert sorted(comp["authors"], key=json.dumps) == sorted(expected, key=json.dumps)


def test_supplier_falls_back_to_authors(target: Target) -> None:
    comp = component(target, {"author": "Solo Dev", "author_email": "solo@example.org"})
    solo = {"name": "Solo Dev", "email": "solo@example.org"}
    assert comp["authors"] == [solo]
    assert comp["supplier"] == {"name": "Solo Dev", "contact": [solo]}


# --- evidence --------------------------------------------------------------------------------

def test_attested_distribution_carries_its_evidence(target: Target) -> None:
    evidence = verify(WHEEL, provenance_json(WHEEL))  # the real provenance, verified offline
    wheel_sha = sha256_of(fixture_bytes(WHEEL))
    (comp,) = fragment(outcome(target, dist(
        "pypi-attestations", "0.0.30", sha256=wheel_sha, attestation=evidence,
        hash_sources=("index", "pin"))))["components"]
    found = props(comp)
    assert found["secinstall:hash-sources"] == ["index,pin"]
    assert found["secinstall:attestation"] == ["verified"]
    assert found["secinstall:attestation:publisher"] == ["github:pypi/pypi-attestations"]
    assert found["secinstall:attestation:publisher:workflow"] == ["release.yml"]
    assert found["secinstall:attestation:publisher:environment"] == ["pypi"]
    assert found["secinstall:attestation:identity"] == [
        "https://github.com/pypi/pypi-attestations/.github/workflows/release.yml@refs/tags/v0.0.30"]
    assert found["secinstall:attestation:issuer"] == ["https://token.actions.githubusercontent.com"]
    assert found["secinstall:attestation:rekor-log-index"] == [str(evidence.rekor_log_index)]
    assert found["secinstall:attestation:integrated-time"] == ["2026-07-28T14:08:32Z"]
    assert evidence.integrated_time == 1785247712
    assert found["secinstall:attestation:instance"] == ["production"]
    assert found["secinstall:index"] == [INDEX]
    assert ("vcs", "https://github.com/pypi/pypi-attestations") in refs(comp)
    (vcs,) = [r for r in comp["externalReferences"] if r["type"] == "vcs"]
    assert "Trusted Publisher" in vcs["comment"]
    assert comp["hashes"] == [{"alg": "SHA-256", "content": wheel_sha}]


def test_gitlab_publisher_links_gitlab(target: Target) -> None:
    comp = component(target, {}, attestation=GITLAB)
    assert ("vcs", "https://gitlab.com/acme/glab") in refs(comp)
    assert props(comp)["secinstall:attestation:publisher"] == ["gitlab:acme/glab"]


@pytest.mark.parametrize("note", ["no provenance", "attestations not checked (--attestations off)"])
def test_unattested_distribution_says_why(target: Target, note: str) -> None:
    comp = component(target, {}, note=note)
    found = props(comp)
    assert found["secinstall:attestation"] == [note]
    assert not [k for k in found if k.startswith("secinstall:attestation:")]
    assert not [t for t, _ in refs(comp) if t == "vcs"]


def test_metadata_names_target_indexes_and_changes(target: Target) -> None:
    old = InstalledDist(NormalizedName("demo"), "0.9", target.root / "demo-0.9.dist-info")
    document = fragment(outcome(target, dist("demo", "1.0"), removed=[old]),
                        indexes=(INDEX, "https://mirror.example.org/simple/"))
    meta = document["metadata"]
    found = props(meta)
    assert found["secinstall:target:python"] == [str(target.python)]
    assert found["secinstall:target:python-version"] == [target.python_version]
    assert found["secinstall:target:root"] == [str(target.root)]
    assert sorted(found["secinstall:index-url"]) == [
        "https://mirror.example.org/simple/", INDEX]
    assert found["secinstall:removed"] == ["demo==0.9"]
    assert meta["tools"]["components"][0]["name"] == "secinstall"
    assert meta["timestamp"].startswith("20")


def test_credentials_never_written(target: Target) -> None:
    secret = "s3cr3t-token"  # noqa: S105 - a made-up credential that must not leak
    text = fragment_text(
        outcome(target, dist("demo", "1.0", url=f"https://user:{secret}@pkgs.example.org/f.whl")),
        indexes=(f"https://__token__:{secret}@pkgs.example.org/simple/",))
    assert secret not in text
    document = json.loads(text)
    assert props(document["metadata"])["secinstall:index-url"] == [
        "https://****@pkgs.example.org/simple/"]
    assert ("distribution", "https://****@pkgs.example.org/f.whl") in refs(
        document["components"][0])


# --- dependencies ---------------------------------------------------------------------------

def test_dependency_edges_follow_markers_and_extras() -> None:
    env = {k: str(v) for k, v in default_environment().items()}
    requires = {
        NormalizedName("app"): ["lib[fast]>=1", "winonly; sys_platform == 'no-such-platform'",
                                "py3; python_version >= '3'", "absent>=1", "app[x]",
                                "not a requirement !!"],
        NormalizedName("lib"): ["speed; extra == 'fast'", "slow; extra == 'slow'"],
        NormalizedName("speed"): [], NormalizedName("slow"): [], NormalizedName("winonly"): [],
        NormalizedName("py3"): [],
        NormalizedName("tool"): ["docs-dep; extra == 'docs'"], NormalizedName("docs-dep"): [],
    }
    edges = dependency_edges(requires, {NormalizedName("tool"): ["Docs"]}, env)
    assert edges == {
        "app": {"lib", "py3"}, "lib": {"speed"}, "speed": set(), "slow": set(),
        "winonly": set(), "py3": set(), "tool": {"docs-dep"}, "docs-dep": set(),
    }


def test_fragment_dependencies(target: Target) -> None:
    document = fragment(outcome(
        target,
        dist("app", "1.0", requires=["lib[fast]", "unlisted",
                                     "never; sys_platform == 'no-such-platform'"]),
        dist("lib", "1.0", requires=["speed; extra == 'fast'"]),
        dist("speed", "2.0"),
        dist("never", "1.0"),
    ))
    ref = {c["name"]: c["bom-ref"] for c in document["components"]}
    graph = {d["ref"]: set(d.get("dependsOn", [])) for d in document["dependencies"]}
    assert graph == {ref["app"]: {ref["lib"]}, ref["lib"]: {ref["speed"]},
                     ref["speed"]: set(), ref["never"]: set()}


# --- the document ---------------------------------------------------------------------------

def test_fragment_validates_against_the_schema(target: Target) -> None:
    evidence = verify(WHEEL, provenance_json(WHEEL))
    result = outcome(
        target,
        dist("pypi-attestations", "0.0.30", attestation=evidence,
             meta={"author_email": "Trail of Bits <opensource@trailofbits.com>",
                   "maintainer_email": "PyPI Admins <admin@pypi.org>",
                   "license_expression": "Apache-2.0",
                   "project_url": ["Homepage, https://pypi.org/project/pypi-attestations",
                                   "Source, https://github.com/pypi/pypi-attestations"]}),
        dist("app", "1.0", requires=["pypi-attestations"],
             meta={"author": "Someone without an address", "author_email": "not-an-address",
                   "license": MIT_TEXT, "classifier": ["License :: Other/Proprietary License"]}),
        dist("glab", "1.0", attestation=GITLAB,
             meta={"license_expression": "MIT OR (GPL-2.0-only WITH Classpath-exception-2.0)"}),
    )
    text = fragment_text(result)
    assert schema_errors(text) is None
    # The validator does reject a broken document, so the check above means something.
    broken = json.loads(text)
    broken["components"][0]["hashes"][0]["content"] = "not hex"
    assert schema_errors(json.dumps(broken)) is not None


def test_write_fragment_is_journaled(target: Target) -> None:
    target.state_dir.mkdir(parents=True)
    result = outcome(target, dist("demo", "1.0"))

    class Abort(Exception):
        pass

    with pytest.raises(Abort), Transaction(target.state_dir) as txn:
        path = write_fragment(txn, result, indexes=[INDEX])
        assert path is not None
        assert path.is_file() and path.parent == target.state_dir / "sbom"
        raise Abort
    assert not (target.state_dir / "sbom").exists()

    with Transaction(target.state_dir) as txn:
        path = write_fragment(txn, result, indexes=[INDEX])
        txn.commit()
    assert path is not None
    assert [p.name for p in (target.state_dir / "sbom").iterdir()] == [path.name]
    assert path.name.endswith(f"-{txn.dir.name.removeprefix('txn-')}.cdx.json")
    assert schema_errors(path.read_text(encoding="utf-8")) is None
    assert json.loads(path.read_text(encoding="utf-8"))["components"][0]["name"] == "demo"


def test_environment_sbom_formats(target: Target) -> None:
    with pytest.raises(ConfigError, match="unknown SBOM format 'xml'"):
        environment_sbom(target, fmt="xml")
    document = json.loads(environment_sbom(target))
    assert document["specVersion"] == "1.6"
    assert document.get("components", []) == []


def dist_info(target: Target, name: str, installer: str, sboms: dict[str, str]) -> None:
    """A `.dist-info` directory as an installer leaves it (METADATA, INSTALLER, sboms/)."""
    path = Path(target.scheme["purelib"]) / f"{name}-1.0.dist-info"
    (path / "sboms").mkdir(parents=True)
    (path / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (path / "INSTALLER").write_text(f"{installer}\n")
    for file, text in sboms.items():
        (path / "sboms" / file).write_text(text)


def test_environment_sbom_tolerates_damaged_files(target: Target) -> None:
    """A damaged fragment and unreadable bundled SBOMs are noted, never fatal."""
    good = json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
                       "components": [{"type": "library", "name": "zlib", "version": "1.3.1",
                                       "bom-ref": "zlib"}]})
    dist_info(target, "demo", "secinstall", {
        "broken.cdx.json": "{not json", "other.spdx.json": '{"spdxVersion": "SPDX-2.3"}',
        "good.cdx.json": good})
    # Another distribution bundling the same library, with the same bom-ref.
    dist_info(target, "twin", "uv", {"good.cdx.json": good})
    (target.state_dir / "sbom").mkdir(parents=True)
    (target.state_dir / "sbom" / "20250101T000000000000Z-0.cdx.json").write_text("truncated {")

    text = environment_sbom(target)

    assert schema_errors(text) is None
    document = json.loads(text)
    (damaged,) = props(document["metadata"])["secinstall:unreadable-fragment"]
    assert damaged.startswith("20250101T000000000000Z-0.cdx.json: JSONDecodeError")
    comp, twin = sorted(document["components"], key=lambda c: str(c["name"]))
    found = props(comp)
    assert found["secinstall:verified"] == ["false"]
    assert found["secinstall:file-hash"] == [
        "unknown: installed by secinstall, but no SBOM fragment records this version"]
    assert "hashes" not in comp
    assert found["secinstall:bundled-sbom"] == ["sboms/good.cdx.json"]
    assert sorted(v.split(":")[0] for v in found["secinstall:bundled-sbom:unreadable"]) == [
        "sboms/broken.cdx.json", "sboms/other.spdx.json"]
    assert "not a CycloneDX JSON document" in " ".join(found["secinstall:bundled-sbom:unreadable"])
    assert [(c["name"], c["version"]) for c in comp["components"]] == [("zlib", "1.3.1")]
    assert props(twin)["secinstall:file-hash"] == [
        "unknown: not installed by secinstall (INSTALLER: uv)"]
    refs = [c["bom-ref"] for top in (comp, twin) for c in [top, *top["components"]]]
    assert len(set(refs)) == len(refs) == 4


def test_import_does_not_load_cyclonedx() -> None:
    """The install path imports `secinstall.sbom`; the heavy library loads only for an SBOM."""
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    code = ("import sys, secinstall.sbom\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('cyclonedx', 'packageurl', 'license_expression', 'jsonschema')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env).stdout
    assert out.strip() == "[]"
