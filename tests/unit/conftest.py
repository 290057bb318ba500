"""Fixtures shared by the unit test modules (the SBOM and its fragment builder)."""

from __future__ import annotations

from pathlib import Path

import pytest

from secinstall.target import Target, resolve_target


@pytest.fixture
def target(tmp_path: Path) -> Target:
    """A `--target` directory for this interpreter: nothing is installed in it."""
    return resolve_target(target_dir=str(tmp_path / "target"))
