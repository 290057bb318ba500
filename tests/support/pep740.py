"""The real PEP 740 data, used offline: files PyPI published with their provenance
(pypi-attestations 0.0.30 wheel and 0.0.19 sdist) and a staging attestation (rfc8785 0.1.2),
kept in `shared/fixtures/pep740`."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from secinstall.verify.attestations import LoadedProvenance, load_provenance, verify_file
from tests.conftest import Venv
from tests.support.cli import pinned
from tests.support.index import LocalIndex

WHEEL = "pypi_attestations-0.0.30-py3-none-any.whl"
SDIST = "pypi_attestations-0.0.19.tar.gz"
STAGING_WHEEL = "rfc8785-0.1.2-py3-none-any.whl"

PROJECT = "pypi-attestations"
NEW_PUBLISHER = "github:pypi/pypi-attestations"  # the wheel's
OLD_PUBLISHER = "github:trailofbits/pypi-attestations"  # the sdist's
NEW_IDENTITY = "https://github.com/pypi/pypi-attestations/.github/workflows/release.yml@"
DIST_INFO = "pypi_attestations-0.0.30.dist-info"
PUBLISHED_BY = f"published by {NEW_PUBLISHER} (workflow release.yml, environment pypi)"

Json = dict[str, Any]


def fixtures_dir() -> Path:
    """`<repo>/../shared/fixtures/pep740`: CI clones the repo with `shared/` beside it."""
    return Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "pep740"


def fixture_bytes(name: str) -> bytes:
    return (fixtures_dir() / name).read_bytes()


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def provenance_json(filename: str) -> Json:
    """A new copy of the provenance (or, for STAGING_WHEEL, the attestation) of `filename`."""
    suffix = ".publish.attestation" if filename == STAGING_WHEEL else ".provenance"
    document: Json = json.loads(fixture_bytes(filename + suffix))
    return document


def load(document: Json, source: str = "test.provenance") -> LoadedProvenance:
    return load_provenance(json.dumps(document).encode(), source=source)


def verify(filename: str, document: Json, **options: Any) -> Any:
    """`verify_file` of the fixture file `filename` against the provenance `document`."""
    return verify_file(filename, sha256_of(fixture_bytes(filename)), load(document), **options)


def real_log_index(filename: str) -> int:
    """The Rekor log index in the real provenance of `filename`."""
    entry = provenance_json(filename)["attestation_bundles"][0]["attestations"][0][
        "verification_material"]["transparency_entries"][0]
    return int(entry["logIndex"])


def serve_real_wheel(index: LocalIndex) -> None:
    """Put the real wheel on the local index, its provenance beside it."""
    index.add(fixtures_dir() / WHEEL, provenance=fixture_bytes(WHEEL + ".provenance"))


def wheel_pin(tmp_path: Path) -> list[str]:
    """`-r FILE --no-deps` pinning the real wheel by its hash."""
    return pinned(tmp_path, f"{PROJECT}==0.0.30", sha256_of(fixture_bytes(WHEEL)))


def is_installed(venv: Venv) -> bool:
    """The real wheel is installed in `venv`: its `.dist-info` and its package are there."""
    return (venv.purelib / DIST_INFO).is_dir() and (
        venv.purelib / "pypi_attestations" / "__init__.py"
    ).is_file()
