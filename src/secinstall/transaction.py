"""All-or-nothing changes to an environment: a lock (one writer at a time) and a
write-ahead journal of every change, so a failure, Ctrl-C or a crash is undone.

Layout, inside the target environment: `.secinstall/lock` and, while a transaction
runs, `.secinstall/txn-<id>/journal.jsonl` with `backup/` beside it. Every file to be
replaced or removed is first renamed into `backup/` (atomic on one filesystem); every
file and directory created is journaled before it is created. Undo replays the journal
backwards. A journal left by a killed process is finished or undone by the next run.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import shutil
import stat
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from .errors import InstallError, LockedError

JOURNAL = "journal.jsonl"
COMMITTED = "committed"


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def environment_lock(state_dir: Path, *, wait: float = 600.0,
                     on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold `.secinstall/lock` exclusively; a second process waits (up to `wait` s)."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        handle = (state_dir / "lock").open("a+b")
    except OSError as exc:
        raise InstallError(f"can't write to {state_dir}: {exc.strerror or exc}") from exc
    with handle:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: msvcrt locking could go here
            yield
            return
        deadline = time.monotonic() + wait
        told = False
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LockedError(
                        f"another secinstall process is changing this environment "
                        f"(lock {state_dir / 'lock'}); gave up after {wait:.0f} s",
                    ) from None
                if not told and on_wait is not None:
                    on_wait()
                    told = True
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def environment_change(state_dir: Path,
                       log: Callable[[str], None] = lambda _m: None) -> Iterator[list[str]]:
    """The environment's lock, held for a change, with a transaction a killed process left
    finished or undone first (so that what is installed is known): yields what that
    recovery did, to be said."""
    with environment_lock(state_dir, on_wait=lambda: log(
            "waiting for another secinstall process to finish with this environment")):
        yield recover(state_dir)


class Transaction:
    """One journaled set of changes; use as a context manager inside the lock."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / f"txn-{uuid.uuid4().hex[:12]}"
        self.backup = self.dir / "backup"
        self._journal: IO[str] | None = None
        self._count = 0
        #: Directories known to exist: an install asks for the same few thousands of times.
        self._dirs: set[Path] = set()

    # -- recording ----------------------------------------------------------------------

    def _log(self, *entries: dict[str, Any]) -> None:
        if not entries:
            return
        if self._journal is None:
            self.backup.mkdir(parents=True)
            self._journal = (self.dir / JOURNAL).open("a", encoding="utf-8")
        self._journal.write("".join(json.dumps(entry) + "\n" for entry in entries))
        # Flushed before the change is made: a killed process leaves a journal that
        # covers everything it did (fsync on commit covers power loss for the end state).
        self._journal.flush()

    def will_create(self, path: Path) -> None:
        """Journal that `path` (a file) is about to be created."""
        self._log({"op": "create", "path": str(path)})

    def will_create_many(self, paths: Iterable[str | Path]) -> None:
        """Journal, in one write, that the files `paths` are about to be created."""
        self._log(*({"op": "create", "path": str(p)} for p in paths))

    def make_dirs(self, path: Path) -> None:
        """Create `path` and missing parents, journaling each directory created."""
        self.make_dirs_many((path,))

    def make_dirs_many(self, paths: Iterable[Path], workers: int = 8) -> None:
        """Create `paths` and their missing parents: journaled in one write, then made
        parents first, in parallel where there are several (on some filesystems each
        directory takes a fraction of a millisecond to create, and many at once take
        little longer than one)."""
        missing: set[Path] = set()
        for path in paths:
            probe = path
            while probe not in self._dirs and probe not in missing and not probe.exists():
                missing.add(probe)
                probe = probe.parent
            self._dirs.add(probe)
        if not missing:
            return
        ordered = sorted(missing, key=lambda p: (len(p.parts), str(p)))
        self._log(*({"op": "mkdir", "path": str(d)} for d in ordered))
        if len(ordered) <= 2:
            for d in ordered:  # a thread pool costs more than it saves here
                d.mkdir()
        else:
            levels: dict[int, list[Path]] = {}
            for d in ordered:
                levels.setdefault(len(d.parts), []).append(d)
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=workers) as pool:
                for level in levels.values():
                    list(pool.map(Path.mkdir, level))
        self._dirs.update(missing)

    @property
    def moved(self) -> int:
        """How many files were moved aside so far."""
        return self._count

    def move_aside(self, path: str | Path) -> None:
        """Move an existing file (or symlink) out of the way, restorable on undo."""
        self._count += 1
        dest = self.backup / str(self._count)
        self._log({"op": "move", "path": str(path), "backup": str(dest)})
        try:
            os.rename(path, dest)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                # Not copied instead: the copy would be made, the original stay (its
                # directory can't be written), and undo would meet both.
                raise InstallError(f"can't move {path} aside (to remove or replace it): "
                                   f"{exc.strerror or exc}") from exc
            shutil.move(str(path), str(dest))  # another filesystem: copied, then deleted

    def remove_dir(self, path: Path) -> None:
        """Remove an empty directory, restorable on undo (with its permissions)."""
        mode = stat.S_IMODE(path.stat().st_mode)
        self._log({"op": "rmdir", "path": str(path), "mode": mode})
        path.rmdir()
        self._dirs.discard(path)

    # -- ending -------------------------------------------------------------------------

    def commit(self) -> None:
        if self._journal is None:
            return
        self._journal.close()
        self._journal = None
        (self.dir / COMMITTED).touch()
        _fsync_dir(self.dir)
        # The journal goes first: from then on there is nothing to undo, whatever order the
        # filesystem lists the rest in. Left to rmtree, the marker could go before the
        # journal and the backups, and a kill in between would "undo" a committed change
        # with half its backups gone.
        (self.dir / JOURNAL).unlink()
        shutil.rmtree(self.dir, ignore_errors=True)

    def rollback(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None
        undo(self.dir)

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.rollback()


def _entries(journal: IO[bytes]) -> list[tuple[int, dict[str, Any]]]:
    """The journal's entries, each with the offset its line starts at."""
    entries = []
    offset = 0
    for line in journal:
        try:
            entries.append((offset, json.loads(line)))
        except ValueError:
            break  # a torn last line: the change it announced was never started
        offset += len(line)
    return entries


def _drop_bytecode_temps(pyc: Path) -> None:
    """importlib writes bytecode to `<name>.pyc.<id>` and renames it into place
    (`importlib._bootstrap_external._write_atomic`): a kill in between leaves that file."""
    with contextlib.suppress(OSError):
        for stray in pyc.parent.glob(f"{glob.escape(pyc.name)}.*"):
            if stray.suffix[1:].isdigit():
                stray.unlink()


def undo(txn_dir: Path) -> None:
    """Replay a journal backwards, then delete it. The journal is cut short behind each
    entry undone, so an undo killed part way through is resumed where it stopped: replayed
    whole, it would delete files it had already restored, as ones the transaction made."""
    try:
        journal = (txn_dir / JOURNAL).open("r+b")
    except FileNotFoundError:
        journal = None
    if journal is not None:
        with journal:
            for offset, entry in reversed(_entries(journal)):
                _undo_one(entry)
                journal.truncate(offset)
        # The journal first, as in commit(): once it is gone there is nothing to replay.
        (txn_dir / JOURNAL).unlink()
    shutil.rmtree(txn_dir, ignore_errors=True)


def _undo_one(entry: dict[str, Any]) -> None:
    """Undo one change; running it again changes nothing more."""
    path = Path(entry["path"])
    op = entry["op"]
    if op == "create":
        if path.is_symlink() or path.is_file():
            path.unlink()
        if path.suffix == ".pyc":
            _drop_bytecode_temps(path)
    elif op == "mkdir":
        with contextlib.suppress(OSError):
            # __pycache__ left by imports during the transaction is ours to drop
            shutil.rmtree(path / "__pycache__", ignore_errors=True)
            path.rmdir()
    elif op == "move":
        backup = Path(entry["backup"])
        if backup.exists() or backup.is_symlink():
            if path.is_file() or path.is_symlink():
                path.unlink()
            path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(backup, path)
    elif op == "rmdir":
        path.mkdir(parents=True, exist_ok=True)
        if "mode" in entry:
            path.chmod(entry["mode"])


def recover(state_dir: Path) -> list[str]:
    """Finish or undo transactions left by killed processes; call with the lock held."""
    done: list[str] = []
    if not state_dir.is_dir():
        return done
    for txn_dir in sorted(state_dir.glob("txn-*")):
        if (txn_dir / COMMITTED).exists():
            shutil.rmtree(txn_dir, ignore_errors=True)
            done.append(f"finished an interrupted transaction ({txn_dir.name})")
        elif not (txn_dir / JOURNAL).exists():
            # Killed before its first change, or while a commit cleaned up: nothing to undo
            shutil.rmtree(txn_dir, ignore_errors=True)
        else:
            undo(txn_dir)
            done.append(f"rolled back an interrupted transaction ({txn_dir.name})")
    return done
