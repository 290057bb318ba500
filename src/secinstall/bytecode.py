"""Bytecode, compiled into each wheel's unpacked tree and linked from there with the
sources.

Compiling is most of a cold install's CPU time, so it starts as soon as each wheel is
unpacked, in processes of the target interpreter (its magic number; the GIL makes threads
useless here), while the other wheels are still being fetched, checked and unpacked.

Every install compiles again from the sources it has just verified, as pip and uv do:
bytecode is code the interpreter runs without looking at the source, and nothing can tell
bytecode left in the cache by an earlier install from bytecode put there by whoever else
can write to the cache (a restored CI cache, say). `--trust-cached-bytecode` (a reported
weakening) reuses it instead: the files written are recorded with their hashes
(`pyc-<cache tag>-<magic>.json` beside the tree), which catches accidents, not attacks.
For the same reason only bytecode this install wrote is used: an older file left in the
tree (where compiling failed) could be anyone's.

A tree that can't be written (a cache on a read-only mount, another user's, baked into a
CI image) gets its bytecode compiled into a private directory of this run instead, linked
or copied from there (the .pyc header names the source's modification time and size,
which a link or the linker's copy keep) and removed when the install is done. Whether a
tree can be written is learnt by trying: root may write everywhere `os.access` looks, but
not on a read-only mount.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess  # nosec B404 - runs the target interpreter to compile bytecode
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO

from .errors import InstallError
from .files import write_atomic
from .target import Target
from .unpack import Unpacked, hash_file
from .verify.wheel import Member, WheelInfo

#: Files at which compiling moves to worker processes: fewer are compiled in-process (a
#: process costs about as much to start as compiling 100 files).
PYC_PER_WORKER = 150
#: A file to compile: its source, its bytecode's place in the tree, and the place used
#: instead in this run's private directory when the tree can't be written.
Job = tuple[str, str, str]
# A worker reads each job as three NUL-terminated paths (a file name can hold a newline,
# which RECORD's line-by-line reading refuses today, never a NUL), and writes each place it
# wrote bytecode to, NUL-terminated, to stdout. `compile_one` is `_compile_one`, kept in step.
_WORKER = ("import os, sys, py_compile\n"
           "unwritable = set()\n"
           "def compile_one(src, cfile, fallback):\n"
           "    where = os.path.dirname(cfile)\n"
           "    if where not in unwritable:\n"
           "        try:\n"
           "            py_compile.compile(src, cfile, doraise=True, quiet=2)\n"
           "            return cfile\n"
           "        except OSError:\n"
           "            unwritable.add(where)\n"
           "    py_compile.compile(src, fallback, doraise=True, quiet=2)\n"
           "    return fallback\n"
           "rest, paths, out = b'', [], sys.stdout.buffer\n"
           "while True:\n"
           "    chunk = sys.stdin.buffer.read1(65536)\n"
           "    if not chunk: break\n"
           "    *done, rest = (rest + chunk).split(b'\\0')\n"
           "    paths += [p.decode('utf-8', 'surrogateescape') for p in done]\n"
           "    whole = len(paths) - len(paths) % 3\n"
           "    for i in range(0, whole, 3):\n"
           "        try: written = compile_one(*paths[i:i + 3])\n"
           "        except Exception: continue\n"
           "        out.write(written.encode('utf-8', 'surrogateescape') + b'\\0')\n"
           "    del paths[:whole]\n")


def _compile_one(src: str, cfile: str, fallback: str, unwritable: set[str]) -> str:
    """Compile `src` to `cfile`, or to `fallback` when `cfile` can't be written (nor,
    then, anything else in its directory: `unwritable`, so that a read-only tree costs
    one failed try per directory, not one per file); returns the path written. The
    worker's `compile_one`, for this interpreter."""
    import py_compile

    where = os.path.dirname(cfile)
    if where not in unwritable:
        try:
            py_compile.compile(src, cfile, doraise=True, quiet=2)
            return cfile
        except OSError:  # a compile error is a PyCompileError: no use trying elsewhere
            unwritable.add(where)
    py_compile.compile(src, fallback, doraise=True, quiet=2)
    return fallback


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


class Bytecode:
    """Bytecode of unpacked wheels for `target`: `add` each tree when it is ready (from
    any thread), `finish` waits for the compiling and gives the trees with their bytecode.
    `close`, once the install is done with that bytecode (or failed), stops the workers and
    removes the bytecode kept outside the trees."""

    def __init__(self, target: Target, workers: int | None = None, *,
                 reuse: bool = False) -> None:
        self.target = target
        self.reuse = reuse
        self._workers = workers or min(os.cpu_count() or 1, 4)
        self._lock = threading.Lock()
        self._found: dict[Path, dict[str, tuple[str, str]]] = {}
        self._compiled: list[Unpacked] = []
        self._pending: list[Job] = []
        self._procs: list[subprocess.Popen[bytes]] = []
        self._errors: list[IO[bytes]] = []
        self._outputs: list[IO[bytes]] = []
        self._sent = 0
        #: Where each tree's bytecode goes when the tree can't be written: in `_private`,
        #: this run's own directory (made at the first tree to compile).
        self._private: str | None = None
        self._elsewhere: dict[Path, str] = {}
        #: The bytecode files this install wrote.
        self._written: set[str] = set()

    def _record(self, u: Unpacked) -> Path:
        return u.root.parent / f"pyc-{self.target.cache_tag}-{self.target.magic}.json"

    def _cached(self, u: Unpacked) -> dict[str, tuple[str, str]] | None:
        """What was compiled in `u`'s tree for this interpreter, if all still as written."""
        try:
            written = json.loads(self._record(u).read_text(encoding="utf-8"))
            found = {str(k): (str(v[0]), str(v[1])) for k, v in written.items()}
        except (OSError, ValueError, TypeError, AttributeError, IndexError):
            return None
        base = str(u.root)
        for pyc, hash_ in found.values():
            have = hash_file(os.path.join(base, pyc), "sha256")
            if have is None or have[0] != hash_:
                return None
        return found

    def add(self, u: Unpacked) -> None:
        if not self.target.cache_tag:
            return
        cached = self._cached(u) if self.reuse else None
        with self._lock:
            if cached is not None:
                self._found[u.root] = cached
                return
            if self._private is None:
                # Private (mode 0700): nobody else can change the bytecode before it is
                # hashed and installed.
                self._private = tempfile.mkdtemp(prefix="secinstall-pyc-")
            elsewhere = self._elsewhere.setdefault(
                u.root, os.path.join(self._private, str(len(self._elsewhere))))
            self._compiled.append(u)
            base, tag = str(u.root), self.target.cache_tag
            for m in compiled_members(u.info):
                pyc = pyc_name(m.path, tag)
                self._pending.append((os.path.join(base, m.path), os.path.join(base, pyc),
                                      os.path.join(elsewhere, pyc)))
            if self._procs or len(self._pending) >= PYC_PER_WORKER:
                self._send(self._pending)
                self._pending = []

    def _send(self, jobs: Sequence[Job]) -> None:
        """Hand `jobs` to the worker processes (started the first time)."""
        if not self._procs:
            for _ in range(self._workers):
                # stdout and stderr to files: a full pipe would block a worker while this
                # process blocks writing to it.
                out = tempfile.TemporaryFile()  # noqa: SIM115 - closed in _wait or close
                self._outputs.append(out)
                err = tempfile.TemporaryFile()  # noqa: SIM115 - closed in _wait or close
                self._errors.append(err)
                self._procs.append(subprocess.Popen(  # noqa: S603  # nosec B603 - no shell
                    [str(self.target.python), "-I", "-c", _WORKER], stdin=subprocess.PIPE,
                    stdout=out, stderr=err))
        for job in jobs:
            stdin = self._procs[self._sent % len(self._procs)].stdin
            assert stdin is not None  # noqa: S101  # nosec B101 - PIPE above
            stdin.write(b"".join(os.fsencode(path) + b"\0" for path in job))
            self._sent += 1
        for proc in self._procs:
            assert proc.stdin is not None  # noqa: S101  # nosec B101 - PIPE above
            proc.stdin.flush()

    def finish(self, unpacked: Sequence[Unpacked]) -> list[Unpacked]:
        """`unpacked`, each with its bytecode (compiled now if it wasn't before): a path
        relative to the tree, or an absolute one outside it."""
        with self._lock:
            if self._procs:
                self._send(self._pending)
                self._wait()
            elif self._pending:
                self._written |= _compile_here(self.target, self._pending)
            self._pending = []
            compiled, self._compiled = self._compiled, []
        tag = self.target.cache_tag or ""
        for u in compiled:
            found = {}
            base, elsewhere = str(u.root), self._elsewhere[u.root]
            in_tree = True
            for m in compiled_members(u.info):
                pyc = pyc_name(m.path, tag)
                if os.path.join(base, pyc) in self._written:
                    where = pyc
                elif os.path.join(elsewhere, pyc) in self._written:
                    where, in_tree = os.path.join(elsewhere, pyc), False
                else:  # a file that doesn't compile is installed all the same
                    continue
                have = hash_file(os.path.join(base, where), "sha256")
                if have is not None:
                    found[m.path] = (where, have[0])
            if in_tree:  # the record is of the tree's bytecode, and only needed there
                with contextlib.suppress(OSError):  # the cache only saves work
                    write_atomic(self._record(u), json.dumps(found))
            self._found[u.root] = found
        return [dataclasses.replace(u, bytecode=self._found.get(u.root, {})) for u in unpacked]

    def _wait(self) -> None:
        failed = []
        for proc in self._procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc, out, err in zip(self._procs, self._outputs, self._errors, strict=True):
            if proc.wait() != 0:
                err.seek(0)
                failed.append(err.read().decode("utf-8", "replace").strip()[-500:])
            out.seek(0)
            self._written.update(os.fsdecode(p) for p in out.read().split(b"\0") if p)
        self._stop()
        if failed:
            raise InstallError(f"compiling bytecode with {self.target.python} failed: "
                               f"{failed[0]}")

    def _stop(self) -> None:
        """Stop the workers, if any are left (the install stopped before `finish`)."""
        for proc in self._procs:
            if proc.poll() is None:
                with contextlib.suppress(OSError):
                    proc.kill()
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            proc.wait()
        for file in (*self._outputs, *self._errors):
            file.close()
        self._procs, self._outputs, self._errors = [], [], []

    def close(self) -> None:
        """Stop the workers, and remove the bytecode compiled outside the trees: only once
        the install has linked or copied it (or failed)."""
        self._stop()
        if self._private is not None:
            shutil.rmtree(self._private, ignore_errors=True)
            self._private = None


def _compile_here(target: Target, jobs: Sequence[Job]) -> set[str]:
    """A few files: in this process when it is the target's interpreter version, else in
    one worker process. Returns the paths written."""
    same = target.is_current or (target.cache_tag == sys.implementation.cache_tag
                                 and target.magic == importlib.util.MAGIC_NUMBER.hex())
    if same:
        import py_compile

        written: set[str] = set()
        unwritable: set[str] = set()
        for job in jobs:
            with contextlib.suppress(py_compile.PyCompileError, SyntaxError, ValueError,
                                     OSError):
                written.add(_compile_one(*job, unwritable))
        return written
    one = Bytecode(target, workers=1)
    try:
        one._send(jobs)
        one._wait()
    finally:
        one.close()
    return one._written
