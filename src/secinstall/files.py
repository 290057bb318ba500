"""Replacing a file in one step, so that a reader sees the old content or the new one,
never a part (a temporary file beside it, then a rename on the same filesystem)."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

from .errors import SecinstallError


def write_atomic(path: Path, data: bytes | str, *, mode: int | None = None) -> None:
    """Write `data` (str as UTF-8) to `path`; the file gets `mode`, else the umask's usual
    mode. Raises OSError, leaving no temporary file behind."""
    # open(..., "x") rather than mkstemp: the new file gets the umask's mode, as any file
    # the user writes; the name is unique per process and thread.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        with open(tmp, "xb") as out:
            out.write(data.encode("utf-8") if isinstance(data, str) else data)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_file(path: Path, data: bytes | str,
               error: type[SecinstallError] = SecinstallError) -> None:
    """`write_atomic` for a file the user asked for (a report, a lock, an SBOM): a failure
    is an `error` that names the file, not a traceback."""
    try:
        write_atomic(path, data)
    except OSError as exc:
        raise error(f"can't write {path}: {exc.strerror or exc}") from exc


def make_executable(path: str | Path) -> None:
    """Add x where the file has r, as installer does for scripts. The file keeps the mode
    the umask gave it: reading the umask means setting it, which threads would race on."""
    mode = os.stat(path).st_mode
    os.chmod(path, mode | ((mode & 0o444) >> 2))
