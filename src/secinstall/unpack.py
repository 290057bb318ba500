"""The unpacked cache: each wheel is extracted once, beside it in the cache, so that an
install links its files into place instead of inflating the archive again (uv's way).

Nothing in it is taken on trust: the tree is written only after every member matched
its RECORD line while it was extracted, and before every later use each file is hashed
again against the RECORD of the wheel in hand (whose sha256 was checked just before).
That costs a read of page-cached files, far less than inflating them. The tree's files are
read-only: an installed file is the same inode, and an edit through it would otherwise
change the cache (the next use would find that, and extract again).

Each install compiles the bytecode into the tree too (`bytecode`), then links it as well.

Layout, beside the wheel in `files/sha256/<aa>/<digest>/`: `unpacked/` (the members). A
cache that can't be written keeps giving the trees it holds (checked as ever); a tree it
lacks, or holds damaged, is extracted into the cache's temporary layer for this run.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shutil
import stat
import uuid
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .cache import Cache
from .errors import InstallError, WheelError
from .files import make_executable
from .models import FetchedFile
from .verify.wheel import UNREADABLE, Member, WheelInfo

TREE = "unpacked"
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Unpacked:
    """A verified wheel's files on disk, ready to be linked into an environment."""

    fetched: FetchedFile
    info: WheelInfo
    root: Path
    #: Compiled bytecode in the tree, by the member it belongs to: {member: (pyc, hash)}.
    bytecode: dict[str, tuple[str, str]]

    def path(self, member: str) -> Path:
        return self.root / member


def _digest(algorithm: str, data_hash: hashlib._Hash) -> str:
    return f"{algorithm}=" + base64.urlsafe_b64encode(data_hash.digest()).decode().rstrip("=")


def hash_file(path: str | Path, algorithm: str) -> tuple[str, int, int] | None:
    """(RECORD-style hash, size, mode) of a regular file, or None when it isn't one."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        h = hashlib.new(algorithm)
        # Reads of the file's size: a buffered reader would allocate a whole chunk for
        # each of the many small files (measured: a tenth of the time of checking a tree).
        want = max(1, min(st.st_size + 1, CHUNK))
        while chunk := os.read(fd, want):
            h.update(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    return _digest(algorithm, h), st.st_size, st.st_mode


def _intact(root: Path, members: Iterable[Member]) -> bool:
    base = str(root)
    for m in members:
        algorithm = m.hash.partition("=")[0]
        found = hash_file(os.path.join(base, m.path), algorithm)
        if found is None or found[0] != m.hash or found[1] != m.size or \
                bool(found[2] & 0o111) != m.executable:
            return False
    return True


def _set_mode(path: str, executable: bool, read_only: bool) -> None:
    if read_only:
        os.chmod(path, 0o555 if executable else 0o444)
    elif executable:
        make_executable(path)


def _extract(zf: zipfile.ZipFile, members: Sequence[Member], into: Path,
             read_only: bool = True) -> list[str]:
    """Write `members` under `into`, hashing each as it is inflated; the problems found."""
    problems = []
    made: set[str] = set()
    base = str(into)
    for m in members:
        algorithm = m.hash.partition("=")[0]
        # Strings, not Paths: pathlib costs more than the rest for a small file.
        dest = os.path.join(base, m.path)
        parent = os.path.dirname(dest)
        if parent not in made:
            os.makedirs(parent, exist_ok=True)
            made.add(parent)
        h = hashlib.new(algorithm)
        size = 0
        with zf.open(m.path) as src, open(dest, "xb") as out:
            while chunk := src.read(CHUNK):
                h.update(chunk)
                size += len(chunk)
                out.write(chunk)
        if _digest(algorithm, h) != m.hash or size != m.size:
            problems.append(f"RECORD: hash / size of {m.path} didn't match RECORD")
        _set_mode(dest, m.executable, read_only)
    return problems


def _remove_tree(path: Path) -> None:
    """Remove a damaged tree (or whatever else is at `path`). An OSError, naming `path`,
    when some of it can't be (a directory in it another user's): what is left of it goes
    back to `path`, where it is found damaged again, not under a name nothing removes."""
    doomed = path.with_name(f".stale-{uuid.uuid4().hex[:12]}")
    try:
        os.rename(path, doomed)  # out of the way at once, even if removal is slow
    except FileNotFoundError:
        return
    try:
        if stat.S_ISDIR(doomed.lstat().st_mode):
            shutil.rmtree(doomed)
        else:
            doomed.unlink()
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.rename(doomed, path)
        # rmtree names what it couldn't remove relative to its directory (before 3.13).
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def unpack(fetched: FetchedFile, info: WheelInfo, cache: Cache) -> Unpacked:
    """The tree of `fetched` in `cache`, beside the wheel: reused when every file still
    matches RECORD, else extracted again, checking each member against RECORD (a mismatch
    refuses the wheel: nothing of it is installed), where the cache puts what it writes."""
    for home in cache.homes(fetched.sha256):
        root = home / TREE
        if root.is_dir() and _intact(root, info.members):
            return Unpacked(fetched, info, root, {})
    try:
        # A layer that lives for one run (`--no-cache-dir`, or the layer of a cache that
        # can't be written) has nothing to protect: its files, and the linked ones, get the
        # usual modes.
        root = cache.write(lambda layer: _extract_into(
            fetched, info, layer.home(fetched.sha256), read_only=not layer.temporary))
    except OSError as exc:
        raise InstallError(f"can't unpack {fetched.path.name} into the cache at "
                           f"{cache.root}: {exc.strerror or exc}") from exc
    return Unpacked(fetched, info, root, {})


def _extract_into(fetched: FetchedFile, info: WheelInfo, home: Path, *,
                  read_only: bool) -> Path:
    """Extract `fetched` into `home`'s tree, replacing a damaged one; its root. An OSError
    is a write that failed: the caller's cache decides where to try again."""
    root = home / TREE
    home.mkdir(parents=True, exist_ok=True)
    staging = home / f".unpacking-{uuid.uuid4().hex[:12]}"
    try:
        try:
            with zipfile.ZipFile(fetched.path) as zf:
                problems = _extract(zf, info.members, staging, read_only)
        except OSError as exc:
            if exc.filename is None:  # not a file of ours: the archive itself
                raise WheelError(f"{fetched.path.name} is not a readable wheel: {exc}") from exc
            raise
        except UNREADABLE as exc:
            raise WheelError(f"{fetched.path.name} is not a readable wheel: {exc}") from exc
        if problems:
            raise WheelError(f"{fetched.path.name} is refused: {problems[0]}",
                             details=problems)
        try:
            os.rename(staging, root)
        except OSError:
            # Another process put a tree there since: use it if it is intact (it may be
            # in use), else replace it with ours.
            if not (root.is_dir() and _intact(root, info.members)):
                _replace(home, staging, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # ours: only there if not put in place
    return root


def _replace(home: Path, staging: Path, root: Path) -> None:
    _remove_tree(root)
    for stale in home.glob("pyc-*.json"):  # bytecode of the old tree's sources
        stale.unlink(missing_ok=True)
    os.rename(staging, root)
