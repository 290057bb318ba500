"""The content-addressed cache: files are stored under their sha256, so a file is found
by the hash the index or a pin gives for it, and what is found is what was verified.

Beside a verified file the cache keeps the index's listing of it and the provenance that
verified, so that a pinned install whose files are all cached needs no network at all
(the file is hashed again, and the provenance verified again, before use)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .errors import FetchError
from .files import write_atomic
from .models import IndexFile, VerifiedDist

LISTING = "listing.json"
PROVENANCE = "provenance.json"

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
        home = self.home(sha256)
        if filename in ("", ".", "..") or any(c in filename for c in "/\\\0"):
            raise FetchError(f"refusing the file name {filename!r}: an index must name a "
                             "file, not a path")
        return home / filename

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

    def remember(self, verified: VerifiedDist) -> None:
        """Keep the listing and the provenance of a file that passed verification."""
        fetched = verified.fetched
        if fetched.path.parent != self.path_for(fetched.sha256, fetched.path.name).parent:
            return
        entry: dict[str, Any] = {"file": dataclasses.asdict(verified.dist.file)}
        if fetched.provenance is not None and verified.attestation is not None:
            entry["provenance"] = {"source": fetched.provenance_source,
                                   "data": fetched.provenance.decode("utf-8", "replace")}
        elif verified.attestation_note == "no provenance":
            # Provenance is uploaded with a file, never added later (PEP 740): none now
            # means none for good, and need not be asked for again.
            entry["provenance"] = None
        text = json.dumps(entry)
        listing = fetched.path.parent / LISTING
        with contextlib.suppress(OSError):
            if listing.read_text(encoding="utf-8") == text:
                return  # a warm install: written before
        # The cache only saves work: a listing that can't be written is not an error.
        with contextlib.suppress(OSError):
            write_atomic(listing, text)

    def home(self, sha256: str) -> Path:
        """The directory that holds the file with this sha256 and what is kept beside it
        (its listing, its unpacked tree)."""
        if not _SHA256.fullmatch(sha256):
            raise FetchError(f"refusing {sha256!r} as a sha256 digest for the cache")
        return self.files / sha256[:2] / sha256

    def recall(self, sha256: str) -> tuple[IndexFile, Path] | None:
        """The listing and cached file of a verified file with this sha256, if cached."""
        if not _SHA256.fullmatch(sha256):
            return None
        entry = _read_json(self.home(sha256) / LISTING)
        try:
            fields = dict(entry["file"]) if entry else None
            if fields is None:
                return None
            file = IndexFile(**fields)
            path = self.lookup(sha256, file.filename)
        except (TypeError, ValueError, KeyError, FetchError):
            return None  # written by another version of secinstall, or damaged
        return (file, path) if path is not None else None

    def provenance(self, sha256: str) -> tuple[bool, tuple[bytes, str] | None]:
        """(known, provenance): what verified the cached file with this sha256 — None
        when it was known to have none — or (False, None) when nothing is recorded."""
        if not _SHA256.fullmatch(sha256):
            return False, None
        entry = _read_json(self.home(sha256) / LISTING)
        if not isinstance(entry, dict) or "provenance" not in entry:
            return False, None
        prov = entry["provenance"]
        try:
            return True, ((prov["data"].encode("utf-8"), f"{prov['source']} (cached)")
                          if prov is not None else None)
        except (TypeError, KeyError, AttributeError):
            return False, None

    def close(self) -> None:
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
