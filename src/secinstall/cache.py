"""The content-addressed cache: files are stored under their sha256, so a file is found
by the hash the index or a pin gives for it, and what is found is what was verified.

Beside a verified file the cache keeps the index's listing of it and the provenance that
verified, so that a pinned install whose files are all cached needs no network at all
(the file is hashed again, and the provenance verified again, before use).

A cache that can't be written, wholly or in part (a read-only mount, another user's, a
directory in it a `sudo` run left, baked into a CI image) is still read: what it holds is
used, checked as ever. What it can't take (a download, its listing, a tree extracted again)
goes to a temporary layer for this run, made at the first write it refuses (`Cache.write`,
the one place that decides); from then on every write goes there. That is learnt by trying,
not with `os.access`: root passes `os.access` where a read-only mount still refuses it."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .errors import FetchError
from .files import write_atomic
from .models import IndexFile, VerifiedDist

LISTING = "listing.json"
PROVENANCE = "provenance.json"

_SHA256 = re.compile(r"[0-9a-f]{64}")
#: A write refused for want of permission: the cache can't be written by this process
#: (other errors, a full disk say, are errors).
_UNWRITABLE = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})

T = TypeVar("T")


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
        #: Where writes go once this cache has refused one: a `Cache(None)` for this run.
        self._overflow: Cache | None = None
        self._overflow_lock = threading.Lock()  # downloads run in threads: one layer
        #: For the user, once writes went to that layer: which cache, and why.
        self.note: str | None = None

    @property
    def temporary(self) -> bool:
        """Whether this cache lives for one run only (`--no-cache-dir`, or the layer of a
        cache that can't be written): nothing in it outlives the run, so nothing to
        protect."""
        return self._tmp is not None

    def write(self, attempt: Callable[[Cache], T]) -> T:
        """`attempt(layer)` with the layer writes go to: this cache, until it refuses a
        write for want of permission; from then on a temporary layer for this run, for
        every write (one place decides, once: not some here and some there)."""
        layer = self._overflow
        if layer is None:
            try:
                return attempt(self)
            except OSError as exc:
                # A temporary cache that can't be written has no better place to go.
                if exc.errno not in _UNWRITABLE or self.temporary:
                    raise
                layer = self._spill(exc)
        return attempt(layer)

    def _spill(self, exc: OSError) -> Cache:
        with self._overflow_lock:
            if self._overflow is None:
                self._overflow = Cache(None)
                # The directory, not only the cache: part of a cache can be another user's
                # (shared, or written by a `sudo` run), and that is what to fix.
                where = _refused_at(exc)
                self.note = (f"the cache at {self.root} can't be written "
                             f"({f'{where}: ' if where else ''}{exc.strerror or exc}): the "
                             "files it holds are used (checked again, as always); new ones "
                             "are kept for this run only")
            return self._overflow

    def _layers(self) -> tuple[Cache, ...]:
        # This run's layer first: it holds only what this cache lacked or held damaged.
        return (self,) if self._overflow is None else (self._overflow, self)

    def homes(self, sha256: str) -> list[Path]:
        """Where the file with this sha256 and what is kept beside it may be, in the order
        to look (see `home`)."""
        return [layer.home(sha256) for layer in self._layers()]

    def path_for(self, sha256: str, filename: str) -> Path:
        return self.home(sha256) / _file_name(filename)

    def lookup(self, sha256: str, filename: str) -> Path | None:
        if not _SHA256.fullmatch(sha256):
            return None  # a malformed hash from an index: nothing cached under it
        name = _file_name(filename)
        return next((p for home in self.homes(sha256) if (p := home / name).is_file()), None)

    def new_temp(self) -> tuple[int, Path]:
        """An open file descriptor and path for a download in progress."""

        def make(layer: Cache) -> tuple[int, Path]:
            layer.files.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=".part-", dir=layer.files)
            return fd, Path(name)

        return self.write(make)

    def store(self, temp: Path, sha256: str, filename: str) -> Path:
        """Put a download from `new_temp` in place: a rename in the layer it was written
        to, or a move to this run's layer when its place in this cache can't be written
        although `files/` could (a directory of it another user's)."""

        def put(layer: Cache) -> Path:
            final = layer.path_for(sha256, filename)
            final.parent.mkdir(parents=True, exist_ok=True)
            if temp.parent == layer.files:
                os.replace(temp, final)
            else:  # written to this cache before it refused a write
                # A copy when this run's layer is on another filesystem. Only here: where a
                # rename is refused, shutil.move copies over the file in place, not atomically.
                shutil.move(temp, final)
            return final

        return self.write(put)

    def remember(self, verified: VerifiedDist) -> None:
        """Keep the listing and the provenance of a file that passed verification."""
        fetched = verified.fetched
        # Beside the file, in whichever layer holds it.
        if fetched.path.parent not in self.homes(fetched.sha256):
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
        home, entry = self._listing(sha256)
        try:
            fields = dict(entry["file"]) if entry else None
            if fields is None:
                return None
            file = IndexFile(**fields)
            path = home / _file_name(file.filename)
        except (TypeError, ValueError, KeyError, FetchError):
            return None  # written by another version of secinstall, or damaged
        return (file, path) if path.is_file() else None

    def provenance(self, sha256: str) -> tuple[bool, tuple[bytes, str] | None]:
        """(known, provenance): what verified the cached file with this sha256 — None
        when it was known to have none — or (False, None) when nothing is recorded."""
        if not _SHA256.fullmatch(sha256):
            return False, None
        _home, entry = self._listing(sha256)
        if not isinstance(entry, dict) or "provenance" not in entry:
            return False, None
        prov = entry["provenance"]
        try:
            return True, ((prov["data"].encode("utf-8"), f"{prov['source']} (cached)")
                          if prov is not None else None)
        except (TypeError, KeyError, AttributeError):
            return False, None

    def _listing(self, sha256: str) -> tuple[Path, Any]:
        """The first listing kept for this sha256, with the directory that holds it."""
        for home in self.homes(sha256):
            entry = _read_json(home / LISTING)
            if entry is not None:
                return home, entry
        return self.home(sha256), None

    def close(self) -> None:
        if self._overflow is not None:
            self._overflow.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)


def _file_name(filename: str) -> str:
    # It comes from an index (or pip's report), as the digest does: neither may lead out of
    # the cache.
    if filename in ("", ".", "..") or any(c in filename for c in "/\\\0"):
        raise FetchError(f"refusing the file name {filename!r}: an index must name a "
                         "file, not a path")
    return filename


def _refused_at(exc: OSError) -> Path | None:
    """The directory a write refused with `exc` was to: the nearest that exists to the
    path it names (a rename's new name)."""
    name = exc.filename2 or exc.filename
    if not isinstance(name, (str, bytes, os.PathLike)):  # none, or a file descriptor
        return None
    path = Path(os.fsdecode(name))
    while not path.is_dir() and path != path.parent:
        path = path.parent
    return path


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
