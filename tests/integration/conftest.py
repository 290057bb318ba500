"""Fixtures of the integration tests: `secinstall install` in-process against the local index."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import Secinstall
from tests.support.index import LocalIndex


@pytest.fixture
def secinstall(
    index: LocalIndex, ca_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Secinstall:
    return Secinstall(index, ca_file, tmp_path, capsys)
