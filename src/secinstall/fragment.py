"""The SBOM fragment of an install, built in a process of its own.

cyclonedx-python-lib takes longer to import, and then to build and write a fragment, than
a warm install takes to link every file; in a thread it would also hold the GIL that the
linking needs. So `install` starts the process first thing (and closes it if there is
nothing to install): it imports cyclonedx while secinstall starts, makes each
distribution's part (`sbom.part`: its component, with licences, evidence and bundled
SBOMs) as soon as its wheel is verified, gets the install's facts when they are known
(before anything is written), and writes the document while the files are linked.

It is only a faster way to the same text (`sbom.fragment_json`): if the process can't be
started, fails or says nothing, `sbom.write_fragment` builds the fragment in this process.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import pickle  # nosec B403 - our own objects, to our own child process, through a pipe
import queue
import subprocess  # nosec B404 - runs this interpreter, no shell
import sys
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .models import VerifiedDist
    from .pipeline import Outcome
    from .unpack import Unpacked

#: A fragment takes well under a second; a child that takes this long is stuck.
TIMEOUT = 120.0
#: How much lower the child's scheduling priority is: it has until the files are linked,
#: while the install's own work is what the user waits for. On a machine with few cores
#: (CI runners have two) the child's imports and bundled SBOMs otherwise take CPU time
#: from the verifying threads and the bytecode workers.
NICENESS = 5
# -I: none of the user's environment variables or site settings; -S: no `site` and no
# .pth files to run (the parent ran them); the parent's sys.path (given as the argument)
# finds the same secinstall and cyclonedx.
_CHILD = ("import json, os, sys\n"
          f"hasattr(os, 'nice') and os.nice({NICENESS})\n"
          "sys.path[:] = json.loads(sys.argv[1])\n"
          "from secinstall.fragment import serve\n"
          "serve()\n"
          # The parent reads until the pipe closes, which is at exit: without the
          # interpreter's teardown of every model object (nothing else is open here).
          "sys.stdout.flush()\n"
          "os._exit(0)\n")

#: What making the parts and the document imports.
_PRELOAD = ("cyclonedx.model.bom", "cyclonedx.output.json", "cyclonedx.schema.schema",
            "cyclonedx.contrib.license.factories", "cyclonedx.spdx", "packageurl",
            "packaging.licenses")


class FragmentBuilder:
    """`verified` each wheel as soon as it is (its part is made meanwhile), `send` the
    install's facts once they are known, then `result` (None: build it yourself).
    `close` stops the process if it is still there. Thread-safe; nothing here waits for
    the child but `result`."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        # Written by a thread of their own: the child takes them in its own time (it may
        # be reading a bundled SBOM), and a pipe holds only so much.
        self._messages: queue.SimpleQueue[tuple[object, ...] | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        # Embedded (no interpreter to start), or the core install without cyclonedx.
        if not sys.executable or importlib.util.find_spec("cyclonedx") is None:
            return
        try:
            self._proc = subprocess.Popen(  # noqa: S603  # nosec B603 - argument list, no shell
                [sys.executable, "-I", "-S", "-c", _CHILD, json.dumps(sys.path)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except OSError:
            return
        self._writer = threading.Thread(target=self._write, args=(self._proc,), daemon=True)
        self._writer.start()

    def verified(self, v: VerifiedDist, tree: Unpacked) -> None:
        """`v` has been verified, and unpacked into `tree`: its part can be made. Its long
        description stays here: the fragment doesn't use it, and it is most of the bytes."""
        info = tree.info
        meta = {k: value for k, value in info.metadata.items() if k != "description"}
        self._messages.put(("dist", v, meta, info.requires_dist,
                            tree.root / info.dist_info_dir))

    def send(self, outcome: Outcome, *, indexes: Sequence[str],
             weakened: Sequence[str]) -> None:
        from .sbom import Install

        removed = outcome.result.removed if outcome.result is not None else ()
        self._messages.put(("build", [v.dist.name for v in outcome.verified], Install(
            outcome.target, list(indexes), list(weakened), outcome.plan.resolver,
            list(removed))))

    def _write(self, proc: subprocess.Popen[bytes]) -> None:
        stdin = proc.stdin
        assert stdin is not None  # noqa: S101  # nosec B101 - PIPE above
        try:
            while (message := self._messages.get()) is not None:
                pickle.dump(message, stdin)
                stdin.flush()
            stdin.close()
        except (OSError, ValueError, pickle.PicklingError, TypeError, AttributeError):
            # The child is gone or the message can't be sent: `result` says None.
            with contextlib.suppress(OSError):
                proc.kill()

    def result(self) -> tuple[str, datetime] | None:
        """The fragment's text and time, or None if the process didn't make it."""
        with self._lock:
            proc, writer = self._proc, self._writer
            if proc is None or writer is None:
                return None
            self._messages.put(None)
            stuck = threading.Timer(TIMEOUT, proc.kill)  # ends the read below
            stuck.start()
            try:
                out = proc.stdout.read() if proc.stdout is not None else b""
                proc.wait()
            except (OSError, ValueError):
                out = b""
            finally:
                stuck.cancel()
            writer.join()
            if proc.returncode != 0:
                self._close()
                return None
        try:
            answer = json.loads(out)
            return str(answer["text"]), datetime.fromisoformat(answer["when"])
        except (ValueError, KeyError, TypeError):
            return None

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.kill()
        self._messages.put(None)  # the writer stops (its pipe is broken anyway)
        if self._writer is not None:
            self._writer.join(TIMEOUT)
        # Both pipes: the writer leaves stdin open when the child went away under it.
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError, ValueError):
                    pipe.close()
        proc.wait()


def serve() -> None:
    """The child: cyclonedx imported while the parent verifies, each distribution's part
    made as it comes, then the document. A part missing for a distribution (it can't be)
    is a KeyError: the parent builds the fragment itself."""
    # Everything a part and the document need, imported before the first wheel is
    # verified: the parent waits only for what is left when its files are linked.
    for module in _PRELOAD:
        importlib.import_module(module)
    from .component import bundled
    from .sbom import fragment_document, part

    parts = {}
    while True:
        message = pickle.load(sys.stdin.buffer)  # noqa: S301  # nosec B301 - our parent's data, through a pipe
        if message[0] == "dist":
            _, v, meta, requires, dist_info = message
            parts[v.dist.name] = part(v, meta, requires, bundled(dist_info))
            continue
        _, names, install = message
        text, when = fragment_document([parts[name] for name in names], install)
        json.dump({"text": text, "when": when.isoformat()}, sys.stdout)
        return
