"""CycloneDX SBOM fragments (placeholder until the SBOM stage lands)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def write_fragment(txn: Any, outcome: Any, *, indexes: Sequence[str]) -> Path | None:
    return None


def environment_sbom(target: Any, *, fmt: str = "cyclonedx-json") -> str:
    raise NotImplementedError
