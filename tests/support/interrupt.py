"""Ctrl-C at a terminal, for a command run by a test: SIGINT to its whole process group,
once the local index has been asked for a given path (so the command is mid-download)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence

from tests.support.index import LocalIndex


def interrupt_when_requested(command: Sequence[str], index: LocalIndex, path: str, *,
                             env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """Run `command` in a session of its own; SIGINT its process group as soon as `index`
    has been asked for `path`; (exit code, stderr)."""
    proc = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=None if env is None else dict(env),
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while path not in index.requests:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    return proc.returncode, err
