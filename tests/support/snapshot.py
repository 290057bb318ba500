"""Records the state of a directory tree, to prove an environment was left unchanged."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path


def snapshot(root: Path, ignore: Callable[[str], bool] | None = None) -> dict[str, tuple[str, int]]:
    """Map each path under `root` (relative, '/'-separated) to (content, permission bits).

    Content is the sha256 of a file, "<dir>", "<symlink:TARGET>" or "<other>" (sockets,
    fifos). Symlinks are recorded, never followed. `ignore(relpath)` returning true leaves
    a path out, and for a directory everything below it too.
    """
    result: dict[str, tuple[str, int]] = {}
    for current, dirs, files in os.walk(root):
        base = Path(current)
        for name in sorted(dirs + files):
            path = base / name
            rel = path.relative_to(root).as_posix()
            if ignore is not None and ignore(rel):
                if name in dirs:
                    dirs.remove(name)
                continue
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                content = f"<symlink:{os.readlink(path)}>"
            elif stat.S_ISDIR(info.st_mode):
                content = "<dir>"
            elif stat.S_ISREG(info.st_mode):
                content = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                content = "<other>"
            result[rel] = (content, stat.S_IMODE(info.st_mode))
    return result
