"""What a secinstall cache holds."""

from __future__ import annotations

from pathlib import Path

from secinstall.cache import LISTING
from secinstall.sbom import BUNDLED


def cached_files(cache: Path) -> list[Path]:
    """The distribution files in the cache at `cache`, not what is kept beside them (their
    listings, unpacked trees and bytecode records)."""
    files = cache / "files" / "sha256"
    kept = {LISTING, BUNDLED}
    return sorted(p for p in files.glob("*/*/*") if p.is_file() and p.name not in kept
                  and not p.name.startswith("pyc-"))
