"""The content-addressed cache: files are stored under their sha256, so a file is found
by the hash the index or a pin gives for it, and what is found is what was verified."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from .errors import FetchError

_SHA256 = re.compile(r"[0-9a-f]{64}")


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
        # Both come from an index (or pip's report): neither may lead out of the cache.
        if not _SHA256.fullmatch(sha256):
            raise FetchError(f"refusing {sha256!r} as a sha256 digest for the cache")
        if filename in ("", ".", "..") or any(c in filename for c in "/\\\0"):
            raise FetchError(f"refusing the file name {filename!r}: an index must name a "
                             "file, not a path")
        return self.files / sha256[:2] / sha256 / filename

    def lookup(self, sha256: str, filename: str) -> Path | None:
        if not _SHA256.fullmatch(sha256):
            return None  # a malformed hash from an index: nothing cached under it
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
