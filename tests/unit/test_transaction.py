"""Tests of secinstall.transaction: undo from the journal, commit, recovery after a kill,
and the environment lock between processes."""

from __future__ import annotations

import inspect
import itertools
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from tests.support.crash import KILL_BEFORE_CHANGE
from tests.support.snapshot import snapshot

import secinstall
from secinstall.errors import InstallError, LockedError
from secinstall.transaction import Transaction, environment_lock, recover

SRC = str(Path(secinstall.__file__).parent.parent)
STATE = ".secinstall"


def _outside_state(rel: str) -> bool:
    return rel == STATE


def _make_env(root: Path) -> Path:
    """An environment with files to replace and remove, an empty directory and a symlink."""
    (root / "lib" / "empty").mkdir(parents=True)
    (root / "lib" / "empty").chmod(0o700)
    (root / "lib" / "old.py").write_text("old\n")
    (root / "lib" / "keep.py").write_text("keep\n")
    (root / "lib" / "pkg" / "__pycache__").mkdir(parents=True)
    (root / "lib" / "pkg" / "mod.py").write_text("old\n")
    (root / "lib" / "pkg" / "__pycache__" / "mod.pyc").write_bytes(b"old")
    (root / "bin").mkdir()
    (root / "bin" / "tool").write_text("#!/bin/sh\n")
    (root / "bin" / "tool").chmod(0o755)
    (root / "bin" / "link").symlink_to("tool")
    return root


@pytest.fixture
def env(tmp_path: Path) -> Path:
    return _make_env(tmp_path / "env")


def make_changes(txn: Transaction, env: Path) -> None:
    """What an upgrade does: replace a file, add a package, drop a directory and files,
    replace a package's directory (uninstalled, then installed again)."""
    pkg = env / "lib" / "pkg"
    for name in ("mod.py", "__pycache__/mod.pyc"):
        txn.move_aside(pkg / name)
    txn.remove_dir(pkg / "__pycache__")
    txn.remove_dir(pkg)
    txn.make_dirs(pkg / "__pycache__")
    for name in ("mod.py", "__pycache__/mod.pyc"):
        txn.will_create(pkg / name)
        (pkg / name).write_text("new\n")
    old = env / "lib" / "old.py"
    txn.move_aside(old)
    txn.will_create(old)
    old.write_text("new\n")
    txn.make_dirs(env / "lib" / "new" / "sub")
    created = env / "lib" / "new" / "sub" / "mod.py"
    txn.will_create(created)
    created.write_text("created\n")
    # Imports during the transaction leave bytecode the journal never saw.
    (env / "lib" / "new" / "__pycache__").mkdir()
    (env / "lib" / "new" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    txn.remove_dir(env / "lib" / "empty")
    txn.move_aside(env / "bin" / "tool")
    txn.move_aside(env / "bin" / "link")


def _changed(env: Path) -> None:
    assert (env / "lib" / "old.py").read_text() == "new\n"
    assert (env / "lib" / "pkg" / "__pycache__" / "mod.pyc").read_text() == "new\n"
    assert (env / "lib" / "new" / "sub" / "mod.py").read_text() == "created\n"
    assert not (env / "lib" / "empty").exists()
    assert not (env / "bin" / "tool").exists()
    assert not (env / "bin" / "link").is_symlink()


def _txn_dirs(env: Path) -> list[Path]:
    return sorted((env / STATE).glob("txn-*"))


# -- in one process ---------------------------------------------------------------------------


def test_rollback_restores_everything(env: Path) -> None:
    before = snapshot(env)
    txn = Transaction(env / STATE)
    make_changes(txn, env)
    _changed(env)
    txn.rollback()
    assert snapshot(env, _outside_state) == before
    assert _txn_dirs(env) == []


def test_exception_in_context_rolls_back(env: Path) -> None:
    before = snapshot(env)
    with pytest.raises(RuntimeError, match="disk full"), Transaction(env / STATE) as txn:
        make_changes(txn, env)
        raise RuntimeError("disk full")
    assert snapshot(env, _outside_state) == before
    assert _txn_dirs(env) == []


def test_commit_keeps_changes_and_drops_backups(env: Path) -> None:
    with Transaction(env / STATE) as txn:
        make_changes(txn, env)
        assert len(list(txn.backup.iterdir())) == 5
        txn.commit()
    _changed(env)
    assert _txn_dirs(env) == []


def test_transaction_without_changes_leaves_nothing(env: Path) -> None:
    before = snapshot(env)
    with Transaction(env / STATE) as txn:
        txn.commit()
    assert snapshot(env) == before  # not even a state directory


def test_rollback_keeps_files_it_did_not_create(env: Path) -> None:
    txn = Transaction(env / STATE)
    txn.make_dirs(env / "lib" / "new")
    (env / "lib" / "new" / "user-data.txt").write_text("not ours\n")
    txn.rollback()
    assert (env / "lib" / "new" / "user-data.txt").read_text() == "not ours\n"


# -- after a killed process ----------------------------------------------------------------------


KILLED = """
from __future__ import annotations
import os, shutil, signal, sys
from pathlib import Path
from secinstall.transaction import Transaction

{make_changes}

env = Path(sys.argv[1])
txn = Transaction(env / ".secinstall")
make_changes(txn, env)
if sys.argv[2] == "commit":
    # Die inside commit(), after the committed marker, before the clean-up.
    shutil.rmtree = lambda *args, **kwargs: os.kill(os.getpid(), signal.SIGKILL)
    txn.commit()
os.kill(os.getpid(), signal.SIGKILL)
"""


def _run_killed(env: Path, mode: str) -> Path:
    code = KILLED.format(make_changes=textwrap.dedent(inspect.getsource(make_changes)))
    proc = subprocess.run([sys.executable, "-c", code, str(env), mode],
                          env={**os.environ, "PYTHONPATH": SRC}, capture_output=True, text=True,
                          check=False)
    assert proc.returncode == -9, proc.stderr
    (txn_dir,) = _txn_dirs(env)
    return txn_dir


def test_recover_rolls_back_an_uncommitted_transaction(env: Path) -> None:
    before = snapshot(env)
    txn_dir = _run_killed(env, "kill")
    _changed(env)

    assert recover(env / STATE) == [f"rolled back an interrupted transaction ({txn_dir.name})"]
    assert snapshot(env, _outside_state) == before
    assert _txn_dirs(env) == []


def test_recover_finishes_a_committed_transaction(env: Path) -> None:
    txn_dir = _run_killed(env, "commit")
    assert (txn_dir / "committed").exists()

    assert recover(env / STATE) == [f"finished an interrupted transaction ({txn_dir.name})"]
    _changed(env)
    assert _txn_dirs(env) == []


def test_recover_ignores_a_torn_last_line(env: Path) -> None:
    before = snapshot(env)
    txn_dir = _run_killed(env, "kill")
    with (txn_dir / "journal.jsonl").open("a") as journal:
        journal.write('{"op": "create", "path": "/etc/pas')  # killed while writing it
    recover(env / STATE)
    assert snapshot(env, _outside_state) == before


def test_recover_with_nothing_to_do(tmp_path: Path) -> None:
    assert recover(tmp_path / "missing") == []
    (tmp_path / STATE).mkdir()
    assert recover(tmp_path / STATE) == []


# -- killed while ending a transaction, or while recovering ------------------------------------


KILLED_WHILE = """
from __future__ import annotations
import os, sys
from pathlib import Path
from secinstall.transaction import Transaction, recover

{make_changes}

# The order the filesystem lists a directory in (ext4's depends on a per-filesystem seed):
# the names in LISTING_ORDER come first, in that order.
ORDER = os.environ.get("LISTING_ORDER", "").split(",")
real_scandir = os.scandir


class Listing(list):
    def __enter__(self): return self
    def __exit__(self, *exc): return None


def scandir(path="."):
    with real_scandir(path) as entries:
        return Listing(sorted(entries, key=lambda e: ORDER.index(e.name)
                              if e.name in ORDER else len(ORDER)))


os.scandir = scandir
env = Path(sys.argv[1])
ending = sys.argv[2]
if ending != "recover":
    txn = Transaction(env / ".secinstall")
    make_changes(txn, env)
""" + KILL_BEFORE_CHANGE + """
if ending == "commit":
    txn.commit()
elif ending == "rollback":
    txn.rollback()
else:
    recover(env / ".secinstall")
"""


def _end_killed(env: Path, ending: str, crash_at: int, order: str = "") -> bool:
    """Run `ending` (commit, rollback or recover) in a process killed before its
    `crash_at`-th change to `env`; whether it was killed (False: it finished first)."""
    code = KILLED_WHILE.replace("{make_changes}",
                                textwrap.dedent(inspect.getsource(make_changes)))
    proc = subprocess.run([sys.executable, "-c", code, str(env), ending],
                          env={**os.environ, "PYTHONPATH": SRC, "CRASH_ROOT": str(env),
                               "CRASH_AT": str(crash_at), "LISTING_ORDER": order},
                          capture_output=True, text=True, check=False)
    assert proc.returncode in (0, -9), proc.stderr
    return proc.returncode == -9


@pytest.mark.skipif(sys.platform != "linux", reason="uses /proc and SIGKILL")
@pytest.mark.parametrize("order", [",".join(names) for names in itertools.permutations(
    ("backup", "committed", "journal.jsonl"))])
def test_killed_while_committing_then_recover_is_before_or_after(tmp_path: Path,
                                                                  order: str) -> None:
    """A kill at any step of commit(), whatever order the filesystem lists the
    transaction's directory in. The committed marker going before the journal and the
    backups used to turn a committed change into a roll-back with backups missing."""
    before = snapshot(_make_env(tmp_path / "reference"))
    assert not _end_killed(tmp_path / "reference", "commit", 0, order)
    after = snapshot(tmp_path / "reference", _outside_state)
    for point in itertools.count(1):
        env = _make_env(tmp_path / f"env{point}")
        if not _end_killed(env, "commit", point, order):
            break
        said = recover(env / STATE)
        state = snapshot(env, _outside_state)
        assert state in (before, after), f"killed before change {point}: {said}"
        assert (state == before) == any(s.startswith("rolled back") for s in said), point
        assert _txn_dirs(env) == []
    assert point > 3  # the marker, the journal, the backups: all were kill points


@pytest.mark.skipif(sys.platform != "linux", reason="uses /proc and SIGKILL")
@pytest.mark.parametrize("ending", ["rollback", "recover"])
def test_killed_while_undoing_then_recover_is_before(tmp_path: Path, ending: str) -> None:
    """Undo killed part way through, then run again: files it had already restored used to
    be deleted as ones the transaction created (a replaced file, and the bytecode in a
    package directory that was removed and made again)."""
    before = snapshot(_make_env(tmp_path / "reference"))
    for point in itertools.count(1):
        env = _make_env(tmp_path / f"env{point}")
        if ending == "recover":
            _run_killed(env, "kill")  # leaves an uncommitted transaction to recover
        if not _end_killed(env, ending, point):
            break
        said = recover(env / STATE)
        assert snapshot(env, _outside_state) == before, f"killed before change {point}: {said}"
        assert _txn_dirs(env) == []
    assert point > 5


# -- the environment lock -----------------------------------------------------------------------


HOLD_LOCK = """
import sys, time
from pathlib import Path
from secinstall.transaction import environment_lock
with environment_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    if sys.argv[2] == "stdin":
        sys.stdin.read()
    else:
        time.sleep(float(sys.argv[2]))
"""


def _hold_lock(state: Path, until: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(state), until],
                            env={**os.environ, "PYTHONPATH": SRC}, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "locked\n"
    return proc


def test_lock_held_elsewhere_times_out(tmp_path: Path) -> None:
    state = tmp_path / STATE
    holder = _hold_lock(state, "stdin")
    waits: list[str] = []
    try:
        with pytest.raises(LockedError) as info, \
                environment_lock(state, wait=0.3, on_wait=lambda: waits.append("told")):
            pytest.fail("the lock was taken while another process held it")
        assert str(state / "lock") in info.value.message
        assert "another secinstall process" in info.value.message
        assert waits == ["told"]  # the user is told once that we wait
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
        assert holder.stdout is not None
        holder.stdout.close()
    with environment_lock(state, wait=0.3):
        pass  # free again once the holder is gone


def test_second_process_waits_for_the_lock(tmp_path: Path) -> None:
    state = tmp_path / STATE
    start = time.monotonic()
    holder = _hold_lock(state, "0.5")
    try:
        with environment_lock(state, wait=30):
            assert holder.poll() is not None or time.monotonic() - start >= 0.5
            waited = time.monotonic() - start
    finally:
        holder.wait(timeout=30)
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.close()
        holder.stdout.close()
    assert waited >= 0.45


def test_lock_in_an_unusable_place(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(InstallError, match=f"can't write to {blocker / STATE}"), \
            environment_lock(blocker / STATE):
        pass
