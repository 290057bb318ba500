"""Builders for the SBOM tests: verified distributions and install outcomes as the pipeline
hands them to the SBOM writer, and the CycloneDX 1.6 schema check."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packaging.utils import canonicalize_name

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

Json = dict[str, Any]
INDEX = "https://pypi.org/simple/"  # the index the distributions are said to come from


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
