"""Ctrl-C at a terminal, for a command run by a test: SIGINT to its whole process group,
once the local index has been asked for a given path (so the command is mid-request)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence

from tests.support.index import LocalIndex


def interrupt_when_requested(command: Sequence[str], index: LocalIndex, path: str, *,
                             env: Mapping[str, str] | None = None, delay: float = 0.0,
                             within: float = 60.0, times: int = 1) -> tuple[int, str]:
    """Run `command` in a session of its own; SIGINT its process group `delay` seconds
    after `index` has been asked for `path` `times` times (time to read what the index
    sent); (exit code, stderr). It must exit `within` seconds of the SIGINT."""
    proc = subprocess.Popen(list(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=None if env is None else dict(env),
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while index.requests.count(path) < times:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        time.sleep(delay)
        os.killpg(proc.pid, signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=within)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"still running {within:.0f} s after SIGINT") from None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    return proc.returncode, err
