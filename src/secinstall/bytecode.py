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
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import os
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
# Paths arrive NUL-terminated: a file name can hold a newline (RECORD's line-by-line
# reading refuses such wheels today), never a NUL.
_WORKER = ("import sys, py_compile\n"
           "rest = b''\n"
           "while True:\n"
           "    chunk = sys.stdin.buffer.read1(65536)\n"
           "    if not chunk: break\n"
           "    *paths, rest = (rest + chunk).split(b'\\0')\n"
           "    for p in paths:\n"
           "        try: py_compile.compile(p.decode('utf-8', 'surrogateescape'), doraise=True,"
           " quiet=2)\n"
           "        except Exception: pass\n")


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
    `close` stops the workers (after a failure elsewhere)."""

    def __init__(self, target: Target, workers: int | None = None, *,
                 reuse: bool = False) -> None:
        self.target = target
        self.reuse = reuse
        self._workers = workers or min(os.cpu_count() or 1, 4)
        self._lock = threading.Lock()
        self._found: dict[Path, dict[str, tuple[str, str]]] = {}
        self._compiled: list[Unpacked] = []
        self._pending: list[Path] = []
        self._procs: list[subprocess.Popen[bytes]] = []
        self._errors: list[IO[bytes]] = []
        self._sent = 0

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
            self._compiled.append(u)
            self._pending += [u.path(m.path) for m in compiled_members(u.info)]
            if self._procs or len(self._pending) >= PYC_PER_WORKER:
                self._send(self._pending)
                self._pending = []

    def _send(self, paths: Sequence[Path]) -> None:
        """Hand `paths` to the worker processes (started the first time)."""
        if not self._procs:
            for _ in range(self._workers):
                # stderr to a file: a full pipe would block a worker while this process
                # blocks writing to it.
                err = tempfile.TemporaryFile()  # noqa: SIM115 - closed in _wait or close
                self._errors.append(err)
                self._procs.append(subprocess.Popen(  # noqa: S603  # nosec B603 - no shell
                    [str(self.target.python), "-I", "-c", _WORKER], stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL, stderr=err))
        for path in paths:
            stdin = self._procs[self._sent % len(self._procs)].stdin
            assert stdin is not None  # noqa: S101  # nosec B101 - PIPE above
            stdin.write(os.fsencode(path) + b"\0")
            self._sent += 1
        for proc in self._procs:
            assert proc.stdin is not None  # noqa: S101  # nosec B101 - PIPE above
            proc.stdin.flush()

    def finish(self, unpacked: Sequence[Unpacked]) -> list[Unpacked]:
        """`unpacked`, each with its bytecode (compiled now if it wasn't before)."""
        with self._lock:
            if self._procs:
                self._send(self._pending)
                self._wait()
            elif self._pending:
                _compile_here(self.target, self._pending)
            self._pending = []
            compiled, self._compiled = self._compiled, []
        tag = self.target.cache_tag or ""
        for u in compiled:
            found = {}
            base = str(u.root)
            for m in compiled_members(u.info):
                pyc = pyc_name(m.path, tag)
                have = hash_file(os.path.join(base, pyc), "sha256")
                if have is not None:  # a file that doesn't compile is installed all the same
                    found[m.path] = (pyc, have[0])
            with contextlib.suppress(OSError):  # the cache only saves work
                write_atomic(self._record(u), json.dumps(found))
            self._found[u.root] = found
        return [dataclasses.replace(u, bytecode=self._found.get(u.root, {})) for u in unpacked]

    def _wait(self) -> None:
        failed = []
        for proc in self._procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc, err in zip(self._procs, self._errors, strict=True):
            if proc.wait() != 0:
                err.seek(0)
                failed.append(err.read().decode("utf-8", "replace").strip()[-500:])
        self.close()
        if failed:
            raise InstallError(f"compiling bytecode with {self.target.python} failed: "
                               f"{failed[0]}")

    def close(self) -> None:
        """Stop the workers, if any are left (the install stopped before `finish`)."""
        for proc in self._procs:
            if proc.poll() is None:
                with contextlib.suppress(OSError):
                    proc.kill()
            if proc.stdin is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
            proc.wait()
        for err in self._errors:
            err.close()
        self._procs, self._errors = [], []


def _compile_here(target: Target, sources: Sequence[Path]) -> None:
    """A few files: in this process when it is the target's interpreter version, else in
    one worker process."""
    same = target.is_current or (target.cache_tag == sys.implementation.cache_tag
                                 and target.magic == importlib.util.MAGIC_NUMBER.hex())
    if same:
        import py_compile

        for src in sources:
            with contextlib.suppress(py_compile.PyCompileError, SyntaxError, ValueError):
                py_compile.compile(str(src), doraise=True, quiet=2)
        return
    one = Bytecode(target, workers=1)
    one._send(sources)
    one._wait()
