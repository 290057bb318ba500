"""What a secinstall cache holds."""

from __future__ import annotations

from pathlib import Path

from secinstall.cache import LISTING


def cached_files(cache: Path) -> list[Path]:
    """The distribution files in the cache at `cache`, not what is kept beside them (their
    listings, unpacked trees and bytecode records)."""
    files = cache / "files" / "sha256"
    return sorted(p for p in files.glob("*/*/*") if p.is_file() and p.name != LISTING
                  and not p.name.startswith("pyc-"))
