"""Profile one `secinstall` command in-process with cProfile, every thread included.

`python -m cProfile` sees only the main thread, which in an install mostly waits for the
download and verification threads; here each new thread gets a profiler of its own and
the results are merged. Usage: profile_install.py OUT.prof {wall,cpu} SECINSTALL-ARGS...
(`cpu` counts each thread's CPU time, which a loaded machine disturbs less than wall time,
but leaves out time spent in subprocesses and waiting for the disk).
"""

from __future__ import annotations

import cProfile
import pstats
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any


def main(argv: Sequence[str]) -> int:
    out, clock, *args = argv
    timer = {"wall": time.perf_counter, "cpu": time.thread_time}[clock]
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def start_thread_profile(_frame: FrameType, _event: str, _arg: Any) -> None:
        # Runs once, first thing in each new thread: swap this hook for a profiler.
        sys.setprofile(None)
        prof = cProfile.Profile(timer)
        with lock:
            profiles.append(prof)
        prof.enable()

    main_profile = cProfile.Profile(timer)
    threading.setprofile(start_thread_profile)
    main_profile.enable()
    from secinstall.cli import main as secinstall_main  # the import is part of the cost

    code = secinstall_main(args)
    main_profile.disable()
    threading.setprofile(None)
    stats = pstats.Stats(main_profile)
    for prof in profiles:
        stats.add(prof)
    stats.dump_stats(out)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
