"""The unpacked cache: each wheel is extracted once, beside it in the cache, so that an
install links its files into place instead of inflating the archive again (uv's way).

Nothing in it is taken on trust: the tree is written only after every member matched
its RECORD line while it was extracted, and before every later use each file is hashed
again against the RECORD of the wheel in hand (whose sha256 was checked just before).
That costs a read of page-cached files, far less than inflating them. The tree's files are
read-only: an installed file is the same inode, and an edit through it would otherwise
change the cache (the next use would find that, and extract again).

Bytecode is cached in the tree too (`__pycache__/`, per interpreter magic number), with
the hashes it was written with, and checked the same way before it is linked.

Layout, beside the wheel in `files/sha256/<aa>/<digest>/`: `unpacked/` (the members) and
`pyc-<cache tag>-<magic>.json` (the bytecode compiled in it).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import stat
import subprocess  # nosec B404 - runs the target interpreter to compile bytecode
import sys
import uuid
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .errors import InstallError, WheelError
from .files import write_atomic
from .models import FetchedFile
from .target import Target
from .verify.wheel import UNREADABLE, Member, WheelInfo

TREE = "unpacked"
CHUNK = 1024 * 1024
#: Files per bytecode-compiling process: fewer are compiled in-process (a process costs
#: about as much to start as compiling 100 files).
PYC_PER_WORKER = 150
_COMPILE = ("import sys, py_compile\n"
            "for p in sys.stdin.buffer.read().decode('utf-8', 'surrogateescape').splitlines():\n"
            "    try: py_compile.compile(p, doraise=True, quiet=2)\n"
            "    except Exception: pass\n")


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


def _hash_file(path: Path, algorithm: str) -> tuple[str, int, int] | None:
    """(RECORD-style hash, size, mode) of a regular file, or None when it isn't one."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    with open(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        h = hashlib.new(algorithm)
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return _digest(algorithm, h), st.st_size, st.st_mode


def _intact(root: Path, members: Iterable[Member]) -> bool:
    for m in members:
        algorithm = m.hash.partition("=")[0]
        found = _hash_file(root / m.path, algorithm)
        if found is None or found[0] != m.hash or found[1] != m.size or \
                bool(found[2] & 0o111) != m.executable:
            return False
    return True


def _read_only(executable: bool) -> int:
    return 0o555 if executable else 0o444


def _extract(zf: zipfile.ZipFile, members: Sequence[Member], into: Path) -> list[str]:
    """Write `members` under `into`, hashing each as it is inflated; the problems found."""
    problems = []
    made: set[Path] = set()
    for m in members:
        algorithm = m.hash.partition("=")[0]
        dest = into / m.path
        if dest.parent not in made:
            dest.parent.mkdir(parents=True, exist_ok=True)
            made.add(dest.parent)
        h = hashlib.new(algorithm)
        size = 0
        with zf.open(m.path) as src, open(dest, "xb") as out:
            while chunk := src.read(CHUNK):
                h.update(chunk)
                size += len(chunk)
                out.write(chunk)
        if _digest(algorithm, h) != m.hash or size != m.size:
            problems.append(f"RECORD: hash / size of {m.path} didn't match RECORD")
        os.chmod(dest, _read_only(m.executable))
    return problems


def _remove_tree(path: Path) -> None:
    """Remove a tree of read-only files (their directories are writable)."""
    if not path.exists():
        return
    doomed = path.with_name(f".stale-{uuid.uuid4().hex[:12]}")
    with contextlib.suppress(OSError):
        os.rename(path, doomed)  # out of the way at once, even if removal is slow
        path = doomed
    shutil.rmtree(path, ignore_errors=True)


def unpack(fetched: FetchedFile, info: WheelInfo, home: Path) -> Unpacked:
    """The tree of `fetched` under `home` (its directory in the cache): reused when every
    file still matches RECORD, else extracted again, checking each member against RECORD
    (a mismatch refuses the wheel: nothing of it is installed)."""
    root = home / TREE
    if root.is_dir() and _intact(root, info.members):
        return Unpacked(fetched, info, root, {})
    home.mkdir(parents=True, exist_ok=True)
    staging = home / f".unpacking-{uuid.uuid4().hex[:12]}"
    try:
        try:
            with zipfile.ZipFile(fetched.path) as zf:
                problems = _extract(zf, info.members, staging)
        except OSError as exc:
            if exc.filename is None:  # not a file of ours: the archive itself
                raise WheelError(f"{fetched.path.name} is not a readable wheel: {exc}") from exc
            raise InstallError(f"can't unpack {fetched.path.name} into the cache at "
                               f"{home}: {exc.strerror or exc}") from exc
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
        _remove_tree(staging)
    return Unpacked(fetched, info, root, {})


def _replace(home: Path, staging: Path, root: Path) -> None:
    for stale in home.glob("pyc-*.json"):  # bytecode of the old tree's sources
        stale.unlink(missing_ok=True)
    _remove_tree(root)
    os.rename(staging, root)


def unpack_all(pairs: Sequence[tuple[FetchedFile, WheelInfo, Path]],
               workers: int = 4) -> list[Unpacked]:
    """`unpack` each in threads: zlib and hashlib release the GIL, and on some filesystems
    creating a file takes most of a millisecond, which threads overlap."""
    if len(pairs) <= 1 or workers <= 1:
        return [unpack(*p) for p in pairs]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda p: unpack(*p), pairs))


# -- bytecode ------------------------------------------------------------------------


def compiled_members(info: WheelInfo) -> Iterator[Member]:
    """The members whose bytecode an installer writes: `.py` files that land in
    purelib or platlib (the archive's root, or its .data/purelib|platlib)."""
    data = info.data_dir + "/"
    for m in info.members:
        if not m.path.endswith(".py"):
            continue
        if m.path.startswith(data) and not m.path.startswith(
                (f"{data}purelib/", f"{data}platlib/")):
            continue
        yield m


def pyc_name(member: str, cache_tag: str) -> str:
    head, _, tail = member.rpartition("/")
    pyc = f"__pycache__/{tail[:-3]}.{cache_tag}.pyc"
    return f"{head}/{pyc}" if head else pyc


def _pyc_record(home: Path, target: Target) -> Path:
    return home / f"pyc-{target.cache_tag}-{target.magic}.json"


def _cached_bytecode(u: Unpacked, target: Target) -> dict[str, tuple[str, str]] | None:
    """The bytecode compiled in `u`'s tree for `target`, if it is all still as written."""
    try:
        written = json.loads(_pyc_record(u.root.parent, target).read_text(encoding="utf-8"))
        found = {str(k): (str(v[0]), str(v[1])) for k, v in written.items()}
    except (OSError, ValueError, TypeError, AttributeError, IndexError):
        return None
    for pyc, hash_ in found.values():
        have = _hash_file(u.root / pyc, "sha256")
        if have is None or have[0] != hash_:
            return None
    return found


def with_bytecode(unpacked: Sequence[Unpacked], target: Target) -> list[Unpacked]:
    """`unpacked`, each with bytecode for `target` compiled in its tree (once: later
    installs reuse it, after checking its hashes)."""
    if not target.cache_tag:
        return list(unpacked)
    done: dict[int, dict[str, tuple[str, str]]] = {}
    todo: list[tuple[int, Unpacked]] = []
    for i, u in enumerate(unpacked):
        cached = _cached_bytecode(u, target)
        if cached is None:
            todo.append((i, u))
        else:
            done[i] = cached
    sources = [u.path(m.path) for _, u in todo for m in compiled_members(u.info)]
    compile_files(target, sources)
    for i, u in todo:
        found = {}
        for m in compiled_members(u.info):
            pyc = pyc_name(m.path, target.cache_tag)
            have = _hash_file(u.root / pyc, "sha256")
            if have is not None:  # a file that doesn't compile is still installed, as in pip
                found[m.path] = (pyc, have[0])
        with contextlib.suppress(OSError):
            write_atomic(_pyc_record(u.root.parent, target), json.dumps(found))
        done[i] = found
    return [Unpacked(u.fetched, u.info, u.root, done[i]) for i, u in enumerate(unpacked)]


def compile_files(target: Target, sources: Sequence[Path]) -> None:
    """Compile `sources` where they are, with the target's interpreter version (its magic
    number), in parallel processes (the GIL makes threads useless here)."""
    if not sources:
        return
    import importlib.util

    same = target.is_current or (target.cache_tag == sys.implementation.cache_tag
                                 and target.magic == importlib.util.MAGIC_NUMBER.hex())
    workers = min(os.cpu_count() or 1, 4, len(sources) // PYC_PER_WORKER)
    if same and workers <= 1:
        import py_compile

        for src in sources:
            with contextlib.suppress(py_compile.PyCompileError, SyntaxError, ValueError):
                py_compile.compile(str(src), doraise=True, quiet=2)
        return
    chunks = [sources[i::max(1, workers)] for i in range(max(1, workers))]
    procs = [subprocess.Popen(  # noqa: S603  # nosec B603 - argument list, no shell
        [str(target.python), "-I", "-c", _COMPILE], stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in chunks]
    for proc, chunk in zip(procs, chunks, strict=True):
        assert proc.stdin is not None  # noqa: S101  # nosec B101 - PIPE above
        proc.stdin.write("\n".join(map(str, chunk)).encode("utf-8", "surrogateescape"))
        proc.stdin.close()
    failed = []
    for proc in procs:
        assert proc.stderr is not None  # noqa: S101  # nosec B101 - PIPE above
        err = proc.stderr.read().decode("utf-8", "replace")
        proc.stderr.close()
        if proc.wait() != 0:
            failed.append(err.strip()[-500:])
    if failed:
        raise InstallError(f"compiling bytecode with {target.python} failed: {failed[0]}")
