"""Writing the files a test reads (configuration, policies, OSV records)."""

from __future__ import annotations

from pathlib import Path


def write(path: Path, text: str) -> Path:
    """`text` written to `path` (its directories made), UTF-8; `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
