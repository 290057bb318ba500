"""Builders for the SBOM tests: verified distributions and install outcomes as the pipeline
hands them to the SBOM writer, wheels' metadata and bundled SBOMs, the
CycloneDX 1.6 schema check and the SPDX 2.3 validation."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packaging.utils import canonicalize_name
from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import JsonLikeDictParser
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from secinstall.models import (
    AttestationEvidence,
    FetchedFile,
    IndexFile,
    InstalledDist,
    InstallResult,
    Plan,
    PlannedDist,
    VerifiedDist,
)
from secinstall.pipeline import Outcome
from secinstall.target import Target
from secinstall.verify.wheel import WheelInfo
from tests.support.wheels import WheelMaker

Json = dict[str, Any]
INDEX = "https://pypi.org/simple/"  # the index the distributions are said to come from

# A PEP 770 SBOM as a build tool would bundle it: odd formatting on purpose, so that
# "installed unchanged" is checked byte for byte.
BUNDLED = (b'{"bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,\n'
           b' "components": [\n'
           b'  {"type": "library", "name": "zlib", "version": "1.3.1",\n'
           b'   "purl": "pkg:generic/zlib@1.3.1", "bom-ref": "zlib"},\n'
           b'  {"type": "library", "name": "openssl", "version": "3.0.15",\n'
           b'   "purl": "pkg:generic/openssl@3.0.15"}]}\n')


def metadata(name: str, version: str, *lines: str) -> str:
    """A METADATA file with extra header lines (Provides-Extra, License-Expression, ...)."""
    return f"Metadata-Version: 2.4\nName: {name}\nVersion: {version}\n" + "".join(
        f"{line}\n" for line in lines)


def dist(name: str, version: str, *, meta: Json | None = None, requires: Sequence[str] = (),
         extras: tuple[str, ...] = (), sha256: str = "0" * 64,
         attestation: AttestationEvidence | None = None, note: str | None = "no provenance",
         hash_sources: tuple[str, ...] = ("index",),
         url: str | None = None) -> tuple[VerifiedDist, WheelInfo]:
    """A verified distribution as the pipeline hands it over, with its checked metadata."""
    key = canonicalize_name(name)
    filename = f"{key.replace('-', '_')}-{version}-py3-none-any.whl"
    file = IndexFile(filename=filename, url=url or f"https://files.example.org/{filename}",
                     hashes={"sha256": sha256}, origin=INDEX)
    planned = PlannedDist(name=key, version=version, file=file, pinned={}, requested=True,
                          requested_extras=extras)
    fetched = FetchedFile(dist=planned, path=Path("/cache") / sha256, hashes={"sha256": sha256},
                          size=1234, from_cache=False)
    metadata = {"metadata_version": "2.4", "name": name, "version": version,
                "requires_dist": list(requires), **(meta or {})}
    return (VerifiedDist(fetched=fetched, hash_sources=hash_sources, attestation=attestation,
                         attestation_note=None if attestation else note),
            WheelInfo(metadata=metadata, requires_dist=tuple(requires), pth_files=()))


def outcome(target: Target, *dists: tuple[VerifiedDist, WheelInfo],
            removed: Sequence[InstalledDist] = ()) -> Outcome:
    """The outcome of installing `dists` into `target` (and removing `removed`)."""
    verified = [v for v, _ in dists]
    result = InstallResult(installed=tuple(verified), removed=tuple(removed))
    return Outcome(target=target, plan=Plan(items=tuple(v.dist for v in verified), resolver="pip"),
                   verified=verified, wheel_info={v.dist.name: i for v, i in dists},
                   result=result)


def schema_errors(text: str) -> object:
    """What the CycloneDX 1.6 JSON schema finds wrong in `text`: None when nothing."""
    return JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)


def spdx_problems(document: Json) -> list[str]:
    """What spdx-tools finds wrong in an SPDX JSON document, once its parser has read it
    back (a document it can't read fails there): empty when nothing."""
    parsed = JsonLikeDictParser().parse(document)  # type: ignore[no-untyped-call]
    return [m.validation_message for m in validate_full_spdx_document(parsed)]


def piponly_wheel(make_wheel: WheelMaker) -> Path:
    """`piponly 3.1`, for pip to install: a licence, an author and a bundled SBOM."""
    return make_wheel("piponly", "3.1", extra_dist_info={
        "METADATA": metadata("piponly", "3.1", "License-Expression: BSD-3-Clause",
                             "Author-email: Pip Only <pip@example.org>"),
        "sboms/bundled.cdx.json": BUNDLED})
