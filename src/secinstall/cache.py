"""The content-addressed cache: files are stored under their sha256, so a file is found
by the hash the index or a pin gives for it, and what is found is what was verified."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def default_cache_dir() -> Path:
    env = os.environ.get("SECINSTALL_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "secinstall"


class Cache:
    """`<root>/files/sha256/<aa>/<digest>/<filename>`; writes are atomic renames."""

    def __init__(self, root: Path | None) -> None:
        #: A cache of None (`--no-cache-dir`) lives in a temporary directory for one run.
        self._tmp = None if root is not None else tempfile.mkdtemp(prefix="secinstall-")
        self.root = root if root is not None else Path(self._tmp or "")
        self.files = self.root / "files" / "sha256"

    def path_for(self, sha256: str, filename: str) -> Path:
        return self.files / sha256[:2] / sha256 / filename

    def lookup(self, sha256: str, filename: str) -> Path | None:
        path = self.path_for(sha256, filename)
        return path if path.is_file() else None

    def new_temp(self) -> tuple[int, Path]:
        """An open file descriptor and path for a download in progress."""
        self.files.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".part-", dir=self.files)
        return fd, Path(name)

    def store(self, temp: Path, sha256: str, filename: str) -> Path:
        final = self.path_for(sha256, filename)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, final)
        return final

    def close(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
