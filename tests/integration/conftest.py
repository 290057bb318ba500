"""Fixtures of the integration tests: `secinstall install` in-process against the local index."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import Secinstall
from tests.support.index import LocalIndex
from tests.support.system_python import SystemPython, make_system_python


@pytest.fixture
def secinstall(
    index: LocalIndex, ca_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> Secinstall:
    return Secinstall(index, ca_file, tmp_path, capsys)


@pytest.fixture
def system_python(tmp_path: Path) -> SystemPython:
    """A Python installation that is not a virtual environment (tests/support/system_python.py)."""
    made = make_system_python(tmp_path / "system")
    if isinstance(made, str):
        pytest.skip(f"no Python installation can be made from this interpreter: {made}")
    return made


@pytest.fixture
def managed(system_python: SystemPython) -> SystemPython:
    """`system_python`, externally managed (PEP 668), its marker saying MANAGED_ERROR."""
    system_python.manage()
    return system_python
