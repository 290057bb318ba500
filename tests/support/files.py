"""Writing the files a test reads (configuration, policies, OSV records), and directories
secinstall really can't write."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest


def write(path: Path, text: str) -> Path:
    """`text` written to `path` (its directories made), UTF-8; `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def denied_prefix(tmp_path: Path) -> list[str]:
    """The command to start secinstall with, for which a directory of mode 0o555 really
    can't be written: as root, secinstall runs without CAP_DAC_OVERRIDE (root's way past
    file modes), so that it meets such a directory as anyone else does (a cache shared
    between users, a directory left by a `sudo` run). Skips the test where that can't be
    done."""
    prefix = ["setpriv", "--bounding-set=-dac_override"] if os.geteuid() == 0 else []
    probe = tmp_path / "mode-probe"
    probe.mkdir()
    probe.chmod(0o555)
    try:
        done = subprocess.run([*prefix, "sh", "-c", 'touch "$1/x" 2>/dev/null', "sh",
                               str(probe)], capture_output=True, check=False)
    except OSError:  # no setpriv
        done = None
    if done is None or done.returncode == 0 or (probe / "x").exists():
        pytest.skip("needs a directory of mode 0o555 to refuse writes (as root: setpriv, "
                    "to drop CAP_DAC_OVERRIDE)")
    return prefix
