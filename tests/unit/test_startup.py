"""Start-up stays small: `--version` and `--help` load none of the heavy libraries (the
benchmark times start-up; this keeps an import added at module level from creeping in)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import secinstall

HEAVY = {"urllib3", "ssl", "cyclonedx", "sigstore", "pypi_attestations", "cryptography",
         "pydantic", "rich", "installer", "truststore"}


@pytest.mark.parametrize("args", [["--version"], ["--help"], ["install", "--help"]])
def test_start_up_loads_no_heavy_library(args: list[str]) -> None:
    code = (
        "import sys\n"
        "from secinstall.cli import main\n"
        "try:\n"
        f"    main({args!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        f"print('loaded:', sorted(loaded & set({sorted(HEAVY)!r})))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(secinstall.__file__).resolve().parents[1])}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "loaded: []"
